//! From SVG to pixels and files: `resvg` rasterises a drawing (with the system's fonts, DejaVu
//! first), scaled to fit a requested size on the drawing's background; `tiny-skia` encodes a
//! PNG; the `gif` crate quantises each frame and writes a looping animated GIF.

use std::sync::Arc;

use resvg::{tiny_skia, usvg};

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    /// The drawing did not parse (a bug: the drawings are ours).
    #[error("the drawing is not valid SVG: {0}")]
    Svg(#[from] usvg::Error),
    /// The size is zero or too large.
    #[error("{w}x{h} pixels: a picture must be 16x16 to 8192x8192")]
    BadSize {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
    /// PNG encoding failed.
    #[error("encoding the PNG: {0}")]
    Png(String),
    /// GIF encoding failed.
    #[error("encoding the GIF: {0}")]
    Gif(#[from] gif::EncodingError),
    /// GIF frames must all have one size (a bug).
    #[error("a GIF frame of {got:?} pixels among frames of {want:?}")]
    FrameSize {
        /// This frame's size.
        got: (u32, u32),
        /// The first frame's.
        want: (u32, u32),
    },
}

/// Sizes a picture may have, per side.
pub const SIDE: std::ops::RangeInclusive<u32> = 16..=8192;
/// The background every drawing has (its first rectangle), filled around a scaled drawing.
const BACKGROUND: (u8, u8, u8) = (0xfb, 0xfb, 0xfa);

/// The system's fonts, with the generic families pointed at DejaVu where it is installed.
pub fn fonts() -> Arc<usvg::fontdb::Database> {
    let mut db = usvg::fontdb::Database::new();
    db.load_system_fonts();
    let has = |family: &str| {
        db.faces()
            .any(|f| f.families.iter().any(|(name, _)| name == family))
    };
    let (sans, mono) = (has("DejaVu Sans"), has("DejaVu Sans Mono"));
    if sans {
        db.set_sans_serif_family("DejaVu Sans");
    }
    if mono {
        db.set_monospace_family("DejaVu Sans Mono");
    }
    Arc::new(db)
}

fn options(fonts: &Arc<usvg::fontdb::Database>) -> usvg::Options<'static> {
    usvg::Options {
        fontdb: Arc::clone(fonts),
        font_family: "DejaVu Sans".into(),
        ..usvg::Options::default()
    }
}

/// The drawing's own size in pixels.
pub fn svg_size(svg: &str) -> Result<(u32, u32), RasterError> {
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default())?;
    let s = tree.size().to_int_size();
    Ok((s.width(), s.height()))
}

/// The drawing with its width and height set to `size` (its viewBox keeps the content, scaled
/// to fit and centred).
pub fn resize_svg(svg: &str, (w, h): (u32, u32)) -> String {
    match svg.split_once(" viewBox=") {
        Some((head, tail)) => {
            // The opening tag's first attributes are width and height; replace them.
            let head = head
                .split_once(" width=")
                .map_or(head, |(before, _)| before);
            format!(
                r#"{head} width="{w}" height="{h}" preserveAspectRatio="xMidYMid meet" viewBox={tail}"#
            )
        }
        None => svg.to_string(),
    }
}

/// Draws `svg` into premultiplied RGBA pixels: its own size, or scaled to fit `size` and
/// centred on the background.
pub fn rasterise(
    svg: &str,
    size: Option<(u32, u32)>,
    fonts: &Arc<usvg::fontdb::Database>,
) -> Result<(tiny_skia::Pixmap, (u32, u32)), RasterError> {
    let tree = usvg::Tree::from_str(svg, &options(fonts))?;
    let own = tree.size();
    let (w, h) = size.unwrap_or((own.width().ceil() as u32, own.height().ceil() as u32));
    if !SIDE.contains(&w) || !SIDE.contains(&h) {
        return Err(RasterError::BadSize { w, h });
    }
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or(RasterError::BadSize { w, h })?;
    let (r, g, b) = BACKGROUND;
    pixmap.fill(tiny_skia::Color::from_rgba8(r, g, b, 255));
    let scale = (w as f32 / own.width()).min(h as f32 / own.height());
    let (dx, dy) = (
        (w as f32 - own.width() * scale) / 2.0,
        (h as f32 - own.height() * scale) / 2.0,
    );
    let transform = tiny_skia::Transform::from_scale(scale, scale).post_translate(dx, dy);
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    Ok((pixmap, (w, h)))
}

/// Encodes pixels as a PNG file.
pub fn png(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>, RasterError> {
    pixmap
        .encode_png()
        .map_err(|e| RasterError::Png(e.to_string()))
}

/// An animated GIF being written: frames of one size, looping forever.
pub struct Gif {
    delay_cs: u16,
    size: Option<(u32, u32)>,
    encoder: Option<gif::Encoder<Vec<u8>>>,
}

impl std::fmt::Debug for Gif {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gif")
            .field("delay_cs", &self.delay_cs)
            .field("size", &self.size)
            .field("started", &self.encoder.is_some())
            .finish()
    }
}

impl Gif {
    /// A GIF of `fps` frames per second (its delays are whole hundredths of a second).
    pub fn new(fps: u32) -> Gif {
        Gif {
            delay_cs: (100 / fps.max(1)).max(1) as u16,
            size: None,
            encoder: None,
        }
    }

    /// Adds a frame (opaque pixels: every drawing fills its background).
    pub fn push(&mut self, pixmap: tiny_skia::Pixmap, size: (u32, u32)) -> Result<(), RasterError> {
        let want = *self.size.get_or_insert(size);
        if want != size {
            return Err(RasterError::FrameSize { got: size, want });
        }
        let (w, h) = (size.0 as u16, size.1 as u16);
        if self.encoder.is_none() {
            let mut e = gif::Encoder::new(Vec::new(), w, h, &[])?;
            e.set_repeat(gif::Repeat::Infinite)?;
            self.encoder = Some(e);
        }
        let mut rgba = pixmap.take();
        // Speed 10 of 1..=30: NeuQuant's quality/speed balance for flat diagrams.
        let mut frame = gif::Frame::from_rgba_speed(w, h, &mut rgba, 10);
        frame.delay = self.delay_cs;
        if let Some(e) = self.encoder.as_mut() {
            e.write_frame(&frame)?;
        }
        Ok(())
    }

    /// The file's bytes and its size.
    pub fn finish(self) -> Result<(Vec<u8>, (u32, u32)), RasterError> {
        let size = self.size.unwrap_or((0, 0));
        match self.encoder {
            Some(e) => Ok((e.into_inner()?, size)),
            None => Ok((Vec::new(), size)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100"><rect width="100%" height="100%" fill="#fbfbfa"/><rect x="10" y="10" width="50" height="50" fill="hsl(200,65%,52%)"/></svg>"##;

    #[test]
    fn a_drawing_is_scaled_to_fit_and_centred() {
        let fonts = Arc::new(usvg::fontdb::Database::new());
        let (own, size) = rasterise(SVG, None, &fonts).expect("draws");
        assert_eq!(size, (200, 100));
        assert_eq!(own.width(), 200);
        let (big, size) = rasterise(SVG, Some((400, 400)), &fonts).expect("draws");
        assert_eq!(size, (400, 400));
        // 2x scale, centred vertically: the square spans x 20..120, y 120..220.
        let px = |x: u32, y: u32| big.pixel(x, y).expect("inside");
        assert_ne!(px(60, 160).red(), 0xfb, "the square is drawn");
        assert_eq!(px(60, 60).red(), 0xfb, "the band above is background");
        assert!(matches!(
            rasterise(SVG, Some((0, 10)), &fonts),
            Err(RasterError::BadSize { .. })
        ));
    }

    #[test]
    fn resizing_an_svg_keeps_its_view_box() {
        let s = resize_svg(SVG, (640, 360));
        assert!(s.contains(r#"width="640" height="360""#), "{s}");
        assert!(s.contains(r#"viewBox="0 0 200 100""#), "{s}");
        assert_eq!(svg_size(&s).expect("parses"), (640, 360));
    }

    #[test]
    fn a_gif_has_every_frame_and_one_size() {
        let fonts = Arc::new(usvg::fontdb::Database::new());
        let mut gif = Gif::new(10);
        for _ in 0..3 {
            let (p, s) = rasterise(SVG, None, &fonts).expect("draws");
            gif.push(p, s).expect("encodes");
        }
        let (p, _) = rasterise(SVG, Some((100, 100)), &fonts).expect("draws");
        assert!(matches!(
            gif.push(p, (100, 100)),
            Err(RasterError::FrameSize { .. })
        ));
        let (bytes, size) = gif.finish().expect("finishes");
        assert_eq!(size, (200, 100));
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(bytes.as_slice()).expect("decodes");
        let mut frames = 0;
        while let Some(f) = d.read_next_frame().expect("frame") {
            assert_eq!((f.width, f.height, f.delay), (200, 100, 10));
            frames += 1;
        }
        assert_eq!(frames, 3);
    }
}

//! `coreplay render`: pictures of a recorded run for places that cannot run the page (a PDF
//! handout, PowerPoint, Keynote, Google Slides, an LMS). The file name's extension decides the
//! format: `.svg` and `.png` draw one instant (`--at`), `.gif` animates a window of the run
//! (`--from`, `--to`) at a speed and frame rate. Every picture is drawn as SVG by [`svg`] from
//! the page's own frame model and rasterised by [`raster`].

pub mod raster;
pub mod svg;

use coreplay_shared::{event::Ns, trace_file::TraceFile};

pub use svg::{Scene, svg};

/// What to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Hardware threads with who runs, who queues; the lock; waiting areas; the event loop.
    Cores,
    /// One lane per hardware thread over the run (or the window), with a cursor.
    Timeline,
    /// Both, cores above the timeline.
    All,
}

/// The picture formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One instant, as an SVG document.
    Svg,
    /// One instant, as a PNG image.
    Png,
    /// A window of the run, as an animated GIF.
    Gif,
}

/// The most frames one GIF may have (a minute at 25 fps).
pub const MAX_FRAMES: u64 = 1500;
/// Frame rates a GIF may have: GIF delays are in hundredths of a second, and viewers slow
/// down anything faster than 50 fps.
pub const FPS: std::ops::RangeInclusive<u32> = 1..=50;
/// A GIF's frames per second unless asked.
pub const DEFAULT_FPS: u32 = 10;
/// How long a GIF of the default speed lasts, seconds.
pub const DEFAULT_GIF_SECONDS: u64 = 6;

/// Why a picture cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The instant lies outside the run.
    #[error("the run lasts {lasts}; --at {at} is after its end")]
    AfterEnd {
        /// The run's length, in words.
        lasts: String,
        /// The time asked for, in words.
        at: String,
    },
    /// The output's extension names no format `render` writes.
    #[error(
        "{0}: the file name must end in .svg or .png (one instant, --at) or .gif (an animation, --from/--to)"
    )]
    UnknownFormat(String),
    /// A flag that does not apply to the chosen format.
    #[error("{flag} does not apply to a {format} file: {why}")]
    NotFor {
        /// The flag.
        flag: &'static str,
        /// The format, in words.
        format: &'static str,
        /// What to use instead.
        why: &'static str,
    },
    /// A still needs its instant.
    #[error("a still picture needs --at TIME (e.g. --at 12.5ms)")]
    NoInstant,
    /// The window is empty or outside the run.
    #[error("--from {from} --to {to}: {why}")]
    BadWindow {
        /// Start, in words.
        from: String,
        /// End, in words.
        to: String,
        /// What is wrong.
        why: String,
    },
    /// The frame rate is out of range.
    #[error("--fps {0}: allowed {min}..={max}", min = FPS.start(), max = FPS.end())]
    BadFps(u32),
    /// The animation would have too many frames.
    #[error(
        "{frames} frames: at most {MAX_FRAMES} (choose a faster --speed, a shorter window or a lower --fps)"
    )]
    TooManyFrames {
        /// Frames asked for.
        frames: u64,
    },
    /// Rasterising or encoding failed.
    #[error(transparent)]
    Raster(#[from] raster::RasterError),
}

impl Format {
    /// The format `path`'s extension names.
    pub fn of(path: &std::path::Path) -> Result<Format, RenderError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            Some("gif") => Ok(Format::Gif),
            _ => Err(RenderError::UnknownFormat(path.display().to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Svg => "SVG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
        }
    }
}

/// What to draw, as the command line asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The instant of a still.
    pub at: Option<Ns>,
    /// The window of an animation (default: the run's start and end).
    pub from: Option<Ns>,
    /// The window's end.
    pub to: Option<Ns>,
    /// Run time shown per second of animation (default: the window in
    /// [`DEFAULT_GIF_SECONDS`]).
    pub speed: Option<Ns>,
    /// Frames per second of an animation (default [`DEFAULT_FPS`]).
    pub fps: Option<u32>,
    /// The picture's size in pixels (default: the drawing's own, 1000 wide).
    pub size: Option<(u32, u32)>,
}

/// A picture, encoded.
#[derive(Debug)]
pub struct Picture {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its size in pixels.
    pub size: (u32, u32),
    /// Its frames (1 for a still).
    pub frames: u64,
    /// For an animation: the window shown (from, to), the run time per second of animation
    /// and the frames per second.
    pub window: Option<(Ns, Ns, Ns, u32)>,
}

fn not_for(flag: &'static str, format: Format, why: &'static str) -> RenderError {
    RenderError::NotFor {
        flag,
        format: format.name(),
        why,
    }
}

/// Draws `view` of `trace` as `format` asks.
pub fn picture(
    trace: &TraceFile,
    view: View,
    format: Format,
    req: &Request,
) -> Result<Picture, RenderError> {
    let scene = Scene::new(trace);
    match format {
        Format::Svg | Format::Png => {
            for (flag, given) in [
                ("--from", req.from.is_some()),
                ("--to", req.to.is_some()),
                ("--speed", req.speed.is_some()),
                ("--fps", req.fps.is_some()),
            ] {
                if given {
                    return Err(not_for(
                        flag,
                        format,
                        "a still shows one instant (--at); animations are written to a .gif",
                    ));
                }
            }
            let at = req.at.ok_or(RenderError::NoInstant)?;
            let drawing = scene.svg(at, view, None)?;
            if format == Format::Svg {
                let size = raster::svg_size(&drawing)?;
                let drawing = match req.size {
                    Some(s) => raster::resize_svg(&drawing, s),
                    None => drawing,
                };
                return Ok(Picture {
                    size: req.size.unwrap_or(size),
                    bytes: drawing.into_bytes(),
                    frames: 1,
                    window: None,
                });
            }
            let fonts = raster::fonts();
            let (pixels, size) = raster::rasterise(&drawing, req.size, &fonts)?;
            Ok(Picture {
                bytes: raster::png(&pixels)?,
                size,
                frames: 1,
                window: None,
            })
        }
        Format::Gif => {
            if req.at.is_some() {
                return Err(not_for(
                    "--at",
                    format,
                    "an animation shows a window (--from, --to); a still is written to a .png or .svg",
                ));
            }
            let end = scene.end();
            let (from, to) = (req.from.unwrap_or(0), req.to.unwrap_or(end));
            let words = |why: String| RenderError::BadWindow {
                from: svg::duration(from),
                to: svg::duration(to),
                why,
            };
            if to > end {
                return Err(words(format!("the run lasts {}", svg::duration(end))));
            }
            if from >= to {
                return Err(words("the window must end after it starts".into()));
            }
            let fps = req.fps.unwrap_or(DEFAULT_FPS);
            if !FPS.contains(&fps) {
                return Err(RenderError::BadFps(fps));
            }
            let speed = req
                .speed
                .unwrap_or_else(|| (to - from).div_ceil(DEFAULT_GIF_SECONDS))
                .max(1);
            // Run time per frame; the last frame shows the window's end.
            let step = (speed / u64::from(fps)).max(1);
            let frames = (to - from).div_ceil(step) + 1;
            if frames > MAX_FRAMES {
                return Err(RenderError::TooManyFrames { frames });
            }
            let fonts = raster::fonts();
            let mut gif = raster::Gif::new(fps);
            for i in 0..frames {
                let at = (from + i * step).min(to);
                let drawing = scene.svg(at, view, Some((from, to)))?;
                let (pixels, size) = raster::rasterise(&drawing, req.size, &fonts)?;
                gif.push(pixels, size)?;
            }
            let (bytes, size) = gif.finish()?;
            Ok(Picture {
                bytes,
                size,
                frames,
                window: Some((from, to, speed, fps)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_extension_decides_the_format_and_an_unknown_one_is_refused() {
        assert_eq!(Format::of(Path::new("a/still.SVG")).ok(), Some(Format::Svg));
        assert_eq!(Format::of(Path::new("still.png")).ok(), Some(Format::Png));
        assert_eq!(Format::of(Path::new("x.gif")).ok(), Some(Format::Gif));
        for bad in ["still.jpg", "still", "still.png.txt"] {
            let e = Format::of(Path::new(bad)).expect_err(bad);
            assert!(e.to_string().contains(".svg or .png"), "{e}");
        }
    }
}

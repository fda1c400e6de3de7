//! Fuzzing of everything that reads input from outside: the WebSocket message decoders, the
//! trace-file reader and the trace validator behind it. Whatever arrives, they return a value
//! or an error and never panic.
//!
//! A mutation loop (no framework: a seeded xorshift generator, so a failure names the seed and
//! the execution that reproduces it) runs over the corpus: `tests/corpus/` (one valid message
//! per file) and `tests/corpus-trace/` (recorded runs, read line by line through a reader that
//! has already taken the file's header, and now and then whole). Mutations are byte-wise
//! (replace, insert, delete, duplicate a slice) and token-wise (splice a JSON token from a
//! dictionary of edge values, or a piece of another seed). Every panic found becomes a file in
//! the corpus.
//!
//! `COREPLAY_FUZZ_EXECS` sets the number of executions (default 1 000 000, split over the
//! machine's cores), `COREPLAY_FUZZ_SEED` the seed. The figures are printed.

use std::{
    panic::AssertUnwindSafe,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use coreplay_shared::{
    decode_client, decode_server,
    trace_file::{self, Item, StreamReader, TraceError},
    validate,
};

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    assert!(seeds.len() >= 5, "the corpus is missing");
    seeds
}

fn trace_corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus-trace");
    let mut seeds: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    assert!(!seeds.is_empty(), "the trace corpus is missing");
    seeds
}

fn trace_seed() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus-trace/io-async.jsonl"
    ))
    .expect("trace corpus")
}

fn decode_both(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = decode_client(&text);
    let _ = decode_server(&text);
}

/// Reads a whole text as a trace and, where it reads, checks its events.
fn read_and_check(text: &str) {
    if let Ok(trace) = trace_file::read(text) {
        let report = trace.check();
        let _ = report.headline();
        let _ = report.keep_good(trace.events);
    }
}

/// xorshift64*: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// JSON tokens at the edges of what the types accept.
const DICTIONARY: &[&str] = &[
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e999",
    "-0.0",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    ",",
    ":",
    "[",
    "{",
    "\"tid\":",
    "\"cpu\":",
    "\"at\":",
    "\"start\":",
    "\"end\":",
    "\"op\":\"release\"",
    "\"op\":\"acquire\"",
    "{\"thread_start\":{\"tid\":1,\"pid\":1,\"os_tid\":1,\"name\":\"x\",\"role\":\"worker\",\"at\":0}}",
    "{\"on_cpu\":{\"tid\":1,\"cpu\":4000000000,\"start\":9,\"end\":1}}",
    "{\"lock\":{\"tid\":1,\"at\":0,\"op\":\"release\"}}",
];

/// Mutates `input` in place with 1 to 8 operations; `other` lends pieces for splicing.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = rng.next() as u8;
            }
            1 => input.insert(at, rng.next() as u8),
            2 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 => {
                // Duplicate a slice (deep nesting, repeated fields).
                let end = (at + rng.below(32)).min(input.len());
                let chunk = input[at..end].to_vec();
                input.splice(at..at, chunk);
            }
            4 | 5 => {
                // Replace what follows with an edge token (a number, a key, a whole event).
                let token = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                let end = (at + rng.below(12)).min(input.len());
                input.splice(at..end, token.iter().copied());
            }
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
            _ => {}
        }
    }
}

/// What one worker of the loop did.
#[derive(Debug, Default)]
struct Counts {
    messages: u64,
    trace_lines: u64,
    trace_files: u64,
}

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `execs` executions from `seed`; a panic is saved as a corpus candidate and counted.
fn fuzz_worker(seed: u64, execs: u64) -> Counts {
    let messages = corpus();
    let traces = trace_corpus();
    // Readers that have taken each trace's header, and each trace's body lines.
    let mut bodies: Vec<(StreamReader, Vec<String>)> = Vec::new();
    for text in &traces {
        let mut reader = StreamReader::new();
        let mut lines = text.split('\n');
        if let Some(first) = lines.next()
            && matches!(reader.push_line(first), Ok(Some(Item::Header(_))))
        {
            bodies.push((reader, lines.map(str::to_string).collect()));
        }
    }
    assert!(!bodies.is_empty(), "no trace of the corpus reads");
    let topology = match trace_file::read(&traces[0]) {
        Ok(t) => t.header.topology,
        Err(e) => panic!("the first corpus trace must read: {e}"),
    };
    let mut rng = Rng(seed | 1);
    let mut counts = Counts::default();
    for exec in 0..execs {
        let pick = rng.below(64);
        let mut input: Vec<u8>;
        let result = if pick < 40 {
            // A message, mutated.
            let seed_msg = &messages[rng.below(messages.len())];
            let other = &messages[rng.below(messages.len())];
            input = seed_msg.clone();
            mutate(&mut rng, &mut input, other);
            counts.messages += 1;
            std::panic::catch_unwind(|| decode_both(&input))
        } else if pick < 63 {
            // A line (or two) of a trace's body, mutated, pushed through a reader past the
            // header; the events it gave are checked.
            let (reader, lines) = &bodies[rng.below(bodies.len())];
            let line = &lines[rng.below(lines.len())];
            input = line.as_bytes().to_vec();
            let other = &lines[rng.below(lines.len())];
            mutate(&mut rng, &mut input, other.as_bytes());
            counts.trace_lines += 1;
            let mut reader = reader.clone();
            let topology = &topology;
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let text = String::from_utf8_lossy(&input);
                for part in text.split('\n') {
                    if let Ok(Some(Item::Events(events))) = reader.push_line(part) {
                        let report = validate::check(topology, &events, false);
                        let _ = report.headline();
                    }
                }
                let _ = reader.finish();
            }))
        } else {
            // A whole file, mutated anywhere (the header included).
            let text = &traces[rng.below(traces.len())];
            input = text.as_bytes().to_vec();
            mutate(&mut rng, &mut input, text.as_bytes());
            counts.trace_files += 1;
            std::panic::catch_unwind(|| read_and_check(&String::from_utf8_lossy(&input)))
        };
        if result.is_err() {
            let n = PANICS.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("coreplay-fuzz-panic-{seed}-{exec}-{n}"));
            let _ = std::fs::write(&path, &input);
            eprintln!(
                "PANIC at seed {seed}, execution {exec}: input saved to {} (add it to the corpus)",
                path.display()
            );
        }
    }
    counts
}

#[test]
fn mutation_loop_never_panics() {
    let execs: u64 = std::env::var("COREPLAY_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("COREPLAY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_4e91_a7ed);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = Instant::now();
    // The default hook would print every caught panic; the loop reports them itself.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let counts: Vec<Counts> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let share = execs / workers + u64::from(w < execs % workers);
                s.spawn(move || fuzz_worker(seed.wrapping_add(w.wrapping_mul(0x9e37_79b9)), share))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    std::panic::set_hook(hook);
    let (m, l, f) = counts.iter().fold((0, 0, 0), |a, c| {
        (a.0 + c.messages, a.1 + c.trace_lines, a.2 + c.trace_files)
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz executions: {} in {secs:.1} s on {workers} threads ({:.0}/s): {m} messages, {l} \
         trace lines, {f} whole trace files (seed {seed})",
        m + l + f,
        (m + l + f) as f64 / secs.max(1e-9)
    );
    assert_eq!(m + l + f, execs);
    assert_eq!(PANICS.load(Ordering::Relaxed), 0, "the decoders panicked");
}

#[test]
fn random_text_never_panics() {
    let mut rng = Rng(0x5eed);
    for _ in 0..20_000 {
        let len = rng.below(257);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        decode_both(&bytes);
        read_and_check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn the_corpus_traces_read_and_are_consistent() {
    for text in trace_corpus() {
        let trace = trace_file::read(&text).expect("a corpus trace reads");
        let report = trace.check();
        assert!(report.is_clean(), "{:?}", report.headline());
    }
}

#[test]
fn trace_files_read_back_and_damage_is_reported() {
    let text = trace_seed();
    let trace = trace_file::read(&text).expect("the corpus trace reads");
    assert!(!trace.events.is_empty());
    // Cut anywhere before the summary: truncated, with the events read so far.
    let cut = text.rfind("{\"summary\"").expect("summary line");
    assert!(matches!(
        trace_file::read(&text[..cut]),
        Err(TraceError::Truncated { .. })
    ));
    assert!(matches!(
        trace_file::read(&text[..cut + 20]),
        Err(TraceError::Truncated { .. })
    ));
    // A file from an older protocol is refused as such.
    let old = include_str!("fixtures/trace-protocol-2.jsonl");
    assert!(matches!(
        trace_file::read(old),
        Err(TraceError::Older {
            protocol_version: 2,
            ..
        })
    ));
    // A damaged line in the middle is named by number.
    let damaged = text.replacen("{\"events\":[", "{\"events\":[garbage", 1);
    assert!(matches!(
        trace_file::read(&damaged),
        Err(TraceError::Corrupt { line: 2, .. })
    ));
}

#[test]
fn corpus_messages_decode() {
    for seed in corpus() {
        let text = String::from_utf8(seed).expect("utf-8");
        assert!(
            decode_client(&text).is_ok() || decode_server(&text).is_ok(),
            "{text}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    decode_both(deep.as_bytes());
    let deep_obj = format!(r#"{{"type":"ping","id":{}}}"#, "[".repeat(50_000));
    decode_both(deep_obj.as_bytes());
    read_and_check(&deep);
}

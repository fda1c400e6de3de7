//! Property-based fuzzing of the message decoders: whatever arrives, they return a value or
//! an error and never panic. Seeds come from `tests/corpus/` (one valid message per file) and
//! are mutated byte-wise; plain random text is tried too. The number of executions is printed.

use std::sync::atomic::{AtomicU64, Ordering};

use coreplay_shared::{
    decode_client, decode_server,
    trace_file::{self, TraceError},
};
use proptest::prelude::*;

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

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

fn decode_both(bytes: &[u8]) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(bytes);
    let _ = decode_client(&text);
    let _ = decode_server(&text);
}

/// A mutation: (position, operation, byte).
fn mutations() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..16)
}

fn mutate(seed: &[u8], ops: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(pos, op, byte) in ops {
        let at = if v.is_empty() { 0 } else { pos % v.len() };
        match op {
            0 if !v.is_empty() => v[at] = byte,
            1 => v.insert(at, byte),
            2 if !v.is_empty() => {
                v.remove(at);
            }
            _ => {
                // Duplicate a slice (deep nesting, repeated fields).
                let end = (at + (byte as usize % 32)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

fn trace_seed() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus-trace/io-async.jsonl"
    ))
    .expect("trace corpus")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_messages_never_panic(seed in 0usize..64, ops in mutations()) {
        let seeds = corpus();
        let input = mutate(&seeds[seed % seeds.len()], &ops);
        decode_both(&input);
    }

    #[test]
    fn random_text_never_panics(text in ".{0,256}") {
        decode_both(text.as_bytes());
    }

    #[test]
    fn mutated_trace_files_never_panic(ops in mutations()) {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        let input = mutate(trace_seed().as_bytes(), &ops);
        let _ = trace_file::read(&String::from_utf8_lossy(&input));
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
}

#[test]
fn zz_print_executions() {
    // Runs last in name order when tests run one at a time; with threads it prints a partial
    // figure, which is still a lower bound.
    println!(
        "fuzz executions so far: {}",
        EXECUTIONS.load(Ordering::Relaxed)
    );
}

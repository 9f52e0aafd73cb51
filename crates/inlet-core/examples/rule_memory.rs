//! Heap bytes a compiled rule keeps alive, counted by a global allocator.
//!
//! `cargo run --release -p inlet-core --example rule_memory [N]` compiles N rules (10,000
//! by default) of two shapes, the way the engine's cache does (stored JSON → `RuleSpec` →
//! `CompiledRule`), keeps them, and prints the live heap per rule. RSS is what the issue
//! measured, but it also counts allocator slack and other threads; live heap bytes are
//! exact and repeatable, so they are what this prints.

use inlet_core::automation::{CompiledRule, RuleSpec};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The rule the issue describes: a comparison, a parameter that is one expression and a
/// literal one.
fn issue_rule(i: usize) -> String {
    serde_json::json!({
        "ref": format!("bench.other_{i}"), "trigger": "stripe.payment_succeeded", "action": "bench.true",
        "enabled": true, "condition": format!("payload.amount > {i}"),
        "parameters": {"customer": "{{ payload.customer }}", "n": i.to_string()},
    })
    .to_string()
}

/// The rule `bench/run` creates for `inlet-sqlite-rules`: its parameter is text around a
/// tag, a full template.
fn bench_rule(i: usize) -> String {
    serde_json::json!({
        "ref": format!("other.rule_{i}"), "trigger": "stripe.payment_succeeded", "action": "bench.true",
        "enabled": true, "condition": format!("payload.amount == {i} and payload.currency == 'eur'"),
        "parameters": {"n": format!("{{{{ payload.id }}}}-{i}")},
    })
    .to_string()
}

fn compile(stored: &str) -> CompiledRule {
    let spec: RuleSpec = serde_json::from_str(stored).expect("the rule parses");
    spec.compile().expect("the rule compiles")
}

/// Live heap bytes per rule while `n` compiled rules of `shape` are kept.
fn bytes_per_rule(n: usize, shape: fn(usize) -> String) -> f64 {
    let stored: Vec<String> = (0..n).map(shape).collect();
    // One-time costs (the shared environment, lazily built) are not per rule.
    drop(compile(&stored[0]));
    let mut rules = Vec::with_capacity(n);
    let before = LIVE.load(Ordering::Relaxed);
    rules.extend(stored.iter().map(|s| compile(s)));
    let after = LIVE.load(Ordering::Relaxed);
    drop(rules);
    (after - before) as f64 / n as f64
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(10_000);
    for (name, shape) in [
        ("issue rule", issue_rule as fn(usize) -> String),
        ("bench rule", bench_rule),
    ] {
        println!(
            "{name}: {:.0} bytes per compiled rule (N={n})",
            bytes_per_rule(n, shape)
        );
    }
}

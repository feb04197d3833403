//! `hookrelay-bench report`: the JSON lines of trials as the Markdown
//! tables of BENCHMARKS.md (medians per scenario and system, then every
//! sample).

use serde_json::Value;
use std::collections::BTreeMap;

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn report(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // Scenario → system → samples.
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    for r in &rows {
        let scenario = format!(
            "{} events, c={}, {} dest, api {} ms, chat {} ms",
            r["count"], r["concurrency"], r["destinations"], r["api_delay_ms"], r["chat_delay_ms"]
        );
        let system = r["system"].as_str().unwrap_or("?");
        let system = match r["label"].as_str() {
            Some(label) if !label.is_empty() => format!("{system} ({label})"),
            _ => system.to_owned(),
        };
        groups
            .entry(scenario)
            .or_default()
            .entry(system)
            .or_default()
            .push(r);
    }
    println!("| scenario | system | runs | accepted/s | accept p50 / p99 ms | delivered/s | e2e p50 / p99 ms | lost | dup | peak RSS MiB | CPU µs/event relay / database |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (scenario, systems) in &groups {
        for (system, samples) in systems {
            let m = |k: &str| median(samples.iter().filter_map(|s| s[k].as_f64()).collect());
            let sum = |k: &str| samples.iter().filter_map(|s| s[k].as_u64()).sum::<u64>();
            let cpu = |k: &str| {
                let v: Vec<f64> = samples.iter().filter_map(|s| s[k].as_f64()).collect();
                if v.is_empty() {
                    "–".to_owned()
                } else {
                    format!("{:.0}", median(v))
                }
            };
            println!(
                "| {scenario} | {system} | {} | {:.0} | {:.2} / {:.2} | {:.0} | {:.1} / {:.1} | {} | {} | {:.1} | {} / {} |",
                samples.len(), m("accepted_per_s"), m("accept_p50_ms"), m("accept_p99_ms"), m("delivered_per_s"),
                m("e2e_p50_ms"), m("e2e_p99_ms"), sum("lost"), sum("duplicates"), m("peak_rss_mib"),
                cpu("relay_cpu_us_per_event"), cpu("server_cpu_us_per_event")
            );
        }
    }
    println!("\nEvery sample (delivered/s):\n");
    for (scenario, systems) in &groups {
        for (system, samples) in systems {
            let v: Vec<String> = samples
                .iter()
                .map(|s| format!("{:.0}", s["delivered_per_s"].as_f64().unwrap_or(0.0)))
                .collect();
            println!("- {scenario} — {system}: {}", v.join(", "));
        }
    }
    let failed = rows.iter().filter(|r| r["ok"] != Value::Bool(true)).count();
    if failed > 0 {
        println!(
            "\n**{failed} run(s) lost, duplicated or had deliveries refused — marked failed.**"
        );
    }
    Ok(())
}

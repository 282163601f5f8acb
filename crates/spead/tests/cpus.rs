//! A run's receiver on a CPU of its own and its sender on the others, seen
//! from outside while the run goes, and told apart from a receiver whose
//! CPU another run's receiver had claimed. A file of its own: the test reads every
//! thread of its process, and no other test's receiver may be among them.

use perfkit_spead::affinity::{self, CpuSet};
use perfkit_spead::run::{self, RunConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The CPUs of each of this process's threads named `name`, by thread ID.
fn cpus_of_threads(name: &str) -> Vec<(libc::pid_t, CpuSet)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let tid: libc::pid_t = t.file_name().to_str()?.parse().ok()?;
            (comm.trim() == name)
                .then(|| affinity::cpus_of(tid).map(|c| (tid, c)))
                .flatten()
        })
        .collect()
}

#[test]
fn a_receiver_runs_on_its_cpu_and_the_sender_on_the_others() {
    let before = affinity::cpus_of(0).unwrap();
    let cpus = before.cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: one CPU");
        return;
    }
    let cpu = cpus[cpus.len() - 1];
    let cfg = RunConfig {
        heap_size: 32 * 1024,
        volume_bytes: 64 << 20,
        rate_bytes_per_s: 200 << 20,
        rx_cpu: Some(cpu),
        tx_avoid_cpu: Some(cpu),
        ..RunConfig::default()
    };
    let running = AtomicBool::new(true);
    let (st, seen) = std::thread::scope(|s| {
        // Each receiving thread's CPUs, in the order seen, while the run goes.
        let watch = s.spawn(|| {
            let mut seen: BTreeMap<libc::pid_t, Vec<String>> = BTreeMap::new();
            while running.load(Ordering::Relaxed) {
                for (tid, c) in cpus_of_threads("spead-recv") {
                    let list = seen.entry(tid).or_default();
                    let c = c.describe();
                    if list.last() != Some(&c) {
                        list.push(c);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        let st = run::run(&cfg, &AtomicBool::new(false)).unwrap();
        running.store(false, Ordering::Relaxed);
        (st, watch.join().unwrap())
    });
    assert_eq!(st.rx.cpu_set, Some(true), "{:?}", st.rx);
    assert_eq!(st.sender_cpu_set, Some(true));
    assert_eq!(st.rx.verified_heaps, 2048, "{:?}", st.rx);
    // One receiving thread. It may be seen with the CPUs it started with,
    // before its first step sets its own, and again in the instant between
    // its last step, which gives them back, and its end; in between, its
    // CPU alone.
    let all = before.describe();
    let lists: Vec<Vec<String>> = seen.into_values().collect();
    assert_eq!(lists.len(), 1, "{lists:?}");
    let list = &lists[0];
    let mut settled: Vec<&String> = list.iter().skip_while(|c| **c == all).collect();
    if settled.len() > 1 && settled.last() == Some(&&all) {
        settled.pop();
    }
    assert_eq!(
        settled,
        [&cpu.to_string()],
        "the receiving thread's CPUs, in order: {list:?}"
    );
    // The sender ran on this thread: its CPUs are back.
    assert_eq!(affinity::cpus_of(0), Some(before));

    // Another run's receiver on the same CPU (its claim held here, as a
    // second `perfkit run` would hold it): the receiver still runs there,
    // but the record says it did not have the CPU to itself.
    let other = affinity::CpuClaim::take(cpu);
    assert!(!other.is_shared(), "another process claims CPU {cpu}");
    let st = run::run(&cfg, &AtomicBool::new(false)).unwrap();
    assert_eq!(st.rx.cpu_set, Some(false), "{:?}", st.rx);
    assert_eq!(st.rx.verified_heaps, 2048, "{:?}", st.rx);
    drop(other);
    let st = run::run(&cfg, &AtomicBool::new(false)).unwrap();
    assert_eq!(st.rx.cpu_set, Some(true), "the claim outlived its run");

    // Another run's receiver that comes once this one is running is found
    // at this one's next check.
    let st = std::thread::scope(|s| {
        let run = s.spawn(|| run::run(&cfg, &AtomicBool::new(false)).unwrap());
        while cpus_of_threads("spead-recv").is_empty() && !run.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !run.is_finished(),
            "the run ended before its receiver was seen"
        );
        let _later = affinity::CpuClaim::take(cpu);
        run.join().unwrap()
    });
    assert_eq!(st.rx.cpu_set, Some(false), "{:?}", st.rx);
}

//! What this machine is, in the forms the records use: its name, its
//! fingerprint (CPU model and logical CPUs, what makes wall-clock figures
//! of two machines incomparable), its class (the fingerprint as a key that
//! CI runners of one type share), and its kernel.

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The host name.
pub fn name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model as the kernel names it.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The CPU model and the number of logical CPUs (`Intel(R) Xeon(R); 2 cpus`):
/// what makes wall-clock figures of two hosts incomparable even under the
/// same host name (a CI runner's container is often called `localhost`).
pub fn fingerprint() -> String {
    let model = cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{model}; {} cpus", cpus())
}

/// The host class: architecture, logical CPUs and CPU model as one key
/// (`x86_64-2c-Intel-R-Xeon-R`), so CI runners of one type share a
/// history whatever their names; `PERFKIT_HOST_CLASS` overrides it.
pub fn class() -> String {
    if let Some(c) = env("PERFKIT_HOST_CLASS") {
        return c;
    }
    let slug = cpu_model()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{}-{}c-{slug}", std::env::consts::ARCH, cpus())
}

/// The kernel release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

//! The per-stage device model of a `uart` run: the scenario's `device.*`
//! settings applied to the profiles' stages, and what the model says back
//! (each device's stage table in virtual time, the bottleneck with its
//! evidence, the link over time), in the record and on the console.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use perfkit_link::bottleneck;
use perfkit_link::sim::{SimConfig, SimReport};
use perfkit_link::stages::{Side, Stages};
use perfkit_link::DeviceProfile;
use perfkit_report::device::{DeviceModel, Timeline};
use perfkit_report::model::{Folded, RunRecord, Stages as RecordStages};

/// Sets `sc`'s stages from the sender's and receiver's profiles, then the
/// scenario's `device.*` values: figures first, then scale factors (so a
/// scale multiplies what was set), in key order.
pub fn apply(
    sc: &mut SimConfig,
    tx: &DeviceProfile,
    rx: &DeviceProfile,
    device: &BTreeMap<String, f64>,
) -> anyhow::Result<()> {
    let mut st = Stages {
        send: tx.stages().send,
        receive: rx.stages().receive,
    };
    let side = |s: &str| match s {
        "send" => Some(Side::Send),
        "receive" => Some(Side::Receive),
        _ => None,
    };
    let (scales, figures): (Vec<_>, Vec<_>) =
        device.iter().partition(|(k, _)| k.ends_with("scale"));
    for (key, &v) in figures.into_iter().chain(scales) {
        let err = |e: perfkit_link::Error| anyhow!("`device.{key}`: {e}");
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["spread_seed"] => sc.spread_seed = v as u64,
            ["send", "write_chunk"] => sc.write_chunk = v as usize,
            ["receive", "poll_interval_us"] => {
                sc.receive.poll_interval_ns = (v * 1000.0).round() as u64
            }
            ["scale"] => {
                for s in [Side::Send, Side::Receive] {
                    st.scale_side(s, v).map_err(err)?;
                }
            }
            [s, "scale"] => {
                let s = side(s).ok_or_else(|| anyhow!("`device.{key}`: unknown device"))?;
                st.scale_side(s, v).map_err(err)?;
            }
            [s, stage, field] if side(s).is_some() => {
                let s = side(s).unwrap_or(Side::Send);
                st.set(s, stage, field, v).map_err(err)?;
            }
            // A stage on both devices.
            [stage, field] => {
                for s in [Side::Send, Side::Receive] {
                    if s.stages().contains(stage) {
                        st.set(s, stage, field, v).map_err(err)?;
                    }
                }
            }
            _ => bail!("`device.{key}`: not a device model parameter"),
        }
    }
    sc.stages = Some(st);
    Ok(())
}

/// The device stage table for the record (`send.add_header_and_send`, ...,
/// folded as `send;add_header_and_send;crc16`) and the model's verdict.
pub fn outcome(sc: &SimConfig, r: &SimReport) -> (Option<RecordStages>, DeviceModel) {
    let stages = r.device.as_ref().map(|t| RecordStages {
        sites: t.sites.clone(),
        folded: t
            .folded
            .iter()
            .map(|(stack, ns)| Folded {
                stack: stack.clone(),
                self_ns: *ns,
            })
            .collect(),
        // A modelled device is charged its stage costs, not measured: no probe.
        probe_ns_per_scope: None,
    });
    let b = bottleneck::judge(sc, r);
    let tl = &r.timeline;
    let secs = tl.interval_ns as f64 / 1e9;
    let mut prev = 0u64;
    let timeline = Timeline {
        interval_s: secs,
        in_flight: tl.samples.iter().map(|s| s.in_flight).collect(),
        rx_fill: tl.samples.iter().map(|s| s.rx_fill).collect(),
        throughput_bps: tl
            .samples
            .iter()
            .map(|s| {
                let d = s.arrived.saturating_sub(prev);
                prev = s.arrived;
                if secs > 0.0 {
                    d as f64 / secs
                } else {
                    0.0
                }
            })
            .collect(),
        dropped: tl.samples.iter().map(|s| s.dropped).collect(),
    };
    let mut evidence: BTreeMap<String, f64> = b.evidence.into_iter().collect();
    evidence.insert("max_byte_wait_us".into(), r.max_byte_wait_ns as f64 / 1e3);
    evidence.insert("mean_byte_wait_us".into(), r.mean_byte_wait_ns / 1e3);
    evidence.insert("rx_high_water_bytes".into(), r.rx_high_water as f64);
    (
        stages,
        DeviceModel {
            bottleneck: b.resource.name().to_owned(),
            why: b.why,
            evidence,
            timeline: Some(timeline),
        },
    )
}

/// The device stage lines in the field's own format, one block per device:
/// `<function add_header_and_send> measure: calls:772 min:3,988 max:24,536 cum:11,925,377`
/// (virtual microseconds). Empty for a run without a modelled device.
pub fn console_lines(r: &RunRecord) -> String {
    let (Some(st), Some(_)) = (&r.device_stages, &r.device_model) else {
        return String::new();
    };
    let mut out = String::new();
    for side in ["send", "receive"] {
        let prefix = format!("{side}.");
        let mut head = false;
        for s in st.sites.iter() {
            let Some(name) = s.name.strip_prefix(&prefix) else {
                continue;
            };
            if !head {
                out.push_str(&format!("device {side} (virtual time):\n"));
                head = true;
            }
            out.push_str(&format!(
                "<function {name}> measure: calls:{} min:{} max:{} cum:{}\n",
                s.calls,
                perfkit::us(s.min_ns),
                perfkit::us(s.max_ns),
                perfkit::us(s.cum_ns)
            ));
        }
    }
    out
}

/// The verdict for a firmware run (emulated or real Pico), from what the
/// device and the link reported: the device's CPU per message (its
/// `*_message_cycles_mean` counter) over the run, the line's utilisation,
/// receive overruns on either side, and the throttle. No timeline: the
/// emulator reports totals only.
pub fn pico_verdict(
    device_receives: bool,
    throttle_pps: f64,
    seconds: f64,
    link: &perfkit_report::model::LinkStats,
    cpu_hz: f64,
) -> DeviceModel {
    let c = |k: &str| link.counters.get(k).copied().unwrap_or(0) as f64;
    let (role, cycles) = match device_receives {
        true => ("receiver", c("device.rx_message_cycles_mean")),
        false => ("sender", c("device.tx_message_cycles_mean")),
    };
    let busy = if seconds > 0.0 && cpu_hz > 0.0 {
        cycles * c("device.messages") / cpu_hz / seconds
    } else {
        0.0
    };
    let util = link.utilisation.unwrap_or(0.0);
    let lost = c("uart_rx_overruns") + c("device.uart_rx_errors") + c("device.frame_overflows");
    let pct = |x: f64| format!("{:.0} %", x * 100.0);
    let (bottleneck, why) = if lost > 0.0 {
        (
            "buffer overflow".to_owned(),
            format!(
                "{lost} receive overruns or dropped frames; the device ({role}) was busy {}",
                pct(busy)
            ),
        )
    } else if util >= 0.9 {
        (
            "wire".to_owned(),
            format!(
                "line utilisation {}; the device ({role}) computed {} of the run",
                pct(util),
                pct(busy)
            ),
        )
    } else if throttle_pps > 0.0 {
        (
            "sender throttle".to_owned(),
            format!("throttled to {throttle_pps} messages/s: line utilisation {}, the device ({role}) busy {}", pct(util), pct(busy)),
        )
    } else if busy >= 0.5 {
        (
            format!("{role} CPU"),
            format!(
                "the device ({role}) computed {} of the run; line utilisation {}",
                pct(busy),
                pct(util)
            ),
        )
    } else {
        (
            format!("{} CPU", if device_receives { "sender" } else { "receiver" }),
            format!("neither the line ({}) nor the device ({role}, busy {}) was saturated, so the host end set the pace", pct(util), pct(busy)),
        )
    };
    DeviceModel {
        bottleneck,
        why,
        evidence: BTreeMap::from([
            (format!("device_{role}_busy"), busy),
            ("utilisation".to_owned(), util),
            ("overflow_bytes".to_owned(), lost),
        ]),
        timeline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_report::model::LinkStats;

    fn link(util: f64, counters: &[(&str, u64)]) -> LinkStats {
        LinkStats {
            wire_bytes: 1,
            utilisation: Some(util),
            counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn pico_verdicts_follow_the_evidence() {
        let busy = [
            ("device.messages", 1000),
            ("device.tx_message_cycles_mean", 1_000_000),
        ];
        // 1000 x 1M cycles at 125 MHz = 8 s of a 10 s run.
        let v = pico_verdict(false, 0.0, 10.0, &link(0.5, &busy), 125e6);
        assert_eq!(v.bottleneck, "sender CPU");
        assert!((v.evidence["device_sender_busy"] - 0.8).abs() < 1e-9);
        assert_eq!(
            pico_verdict(false, 0.0, 10.0, &link(0.99, &busy), 125e6).bottleneck,
            "wire"
        );
        assert_eq!(
            pico_verdict(false, 40.0, 10.0, &link(0.2, &[]), 125e6).bottleneck,
            "sender throttle"
        );
        let lost = [("uart_rx_overruns", 3)];
        assert_eq!(
            pico_verdict(true, 0.0, 10.0, &link(0.2, &lost), 125e6).bottleneck,
            "buffer overflow"
        );
        assert_eq!(
            pico_verdict(true, 0.0, 10.0, &link(0.2, &[]), 125e6).bottleneck,
            "sender CPU"
        );
    }

    #[test]
    fn stage_parameters_land_on_their_stage_and_scales_come_last() {
        let pico = DeviceProfile::builtin("pico-micropython").unwrap();
        let mut sc = SimConfig::from_profiles(115_200, 10, &pico, &pico);
        let device = BTreeMap::from([
            ("send.crc16.per_call_us".to_owned(), 700.0),
            ("send.scale".to_owned(), 2.0),
            ("crc16.per_byte_us".to_owned(), 1.0),
            ("receive.poll_interval_us".to_owned(), 5.0),
            ("send.write_chunk".to_owned(), 16.0),
        ]);
        apply(&mut sc, &pico, &pico, &device).unwrap();
        let st = sc.stages.unwrap();
        assert_eq!(st.send.crc16.per_call_us, 1400.0);
        assert_eq!(st.send.crc16.per_byte_us, 2.0);
        assert_eq!(st.receive.crc16.per_byte_us, 1.0);
        assert_eq!(sc.receive.poll_interval_ns, 5_000);
        assert_eq!(sc.write_chunk, 16);
        let bad = BTreeMap::from([("send.crc.per_call_us".to_owned(), 1.0)]);
        assert!(apply(&mut sc, &pico, &pico, &bad).is_err());
    }
}

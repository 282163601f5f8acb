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

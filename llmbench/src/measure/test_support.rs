//! Records built by hand for the unit tests of the aggregation.

use super::RequestRecord;

/// A successful record sent (and scheduled) at `sent` ms with the given
/// TTFT, end-to-end latency, gaps and output tokens (a TPOT from 2 on).
pub(crate) fn record(sent: f64, ttft: f64, e2e: f64, gaps: &[f64], tokens: u32) -> RequestRecord {
    RequestRecord {
        scenario: "s".into(),
        step: None,
        engine: "e".into(),
        model: "m".into(),
        request_id: 0,
        user: 0,
        response_id: None,
        success: true,
        scheduled_ms: sent,
        sent_ms: sent,
        schedule_lag_ms: 0.0,
        ttfb_ms: Some(ttft),
        ttft_ms: Some(ttft),
        ttfs_ms: None,
        e2e_latency_ms: e2e,
        itl_ms: gaps.to_vec(),
        itl_mean_ms: None,
        tpot_ms: (tokens >= 2).then(|| (e2e - ttft) / f64::from(tokens - 1)),
        prompt_tokens: Some(10),
        requested_prompt_tokens: None,
        output_tokens: Some(tokens),
        output_tokens_estimated: false,
        content_chunks: tokens,
        output_tps: Some(f64::from(tokens) / (e2e / 1e3)),
        finish_reason: None,
        error: None,
        slo_met: None,
        server: Default::default(),
        latency_from_schedule: false,
        warmup: false,
        retries: 0,
    }
}

/// A successful 2-token record scheduled at `at` ms with TTFT `ttft` ms.
pub(crate) fn record_at(at: f64, ttft: f64) -> RequestRecord {
    record(at, ttft, ttft + 10.0, &[10.0], 2)
}

/// The client's CPU over `wall_s` seconds on 2 cores: `cores_share` of both,
/// its busiest thread (`llmbench-client`) at `busiest` of one.
pub(crate) fn client_cpu(cores_share: f64, busiest: f64, wall_s: f64) -> super::ClientCpu {
    super::ClientCpu {
        cpu_s: cores_share * wall_s * 2.0,
        wall_s,
        cores: 2,
        cores_share,
        busiest_thread: Some("llmbench-client".into()),
        busiest_thread_share: Some(busiest),
        threads: Default::default(),
    }
}

//! The monitor end to end: `cargo bench` against the built-in simulator on
//! a machine without a GPU writes `monitor.csv` with host, client and
//! simulator series, sums each trial up in `summary.json`, and says once
//! that there is no GPU; `--no-monitor` turns it all off.

use super::*;

fn monitored(args: &[&str]) -> Output {
    fixture_command(args)
        .env_remove("LLMBENCH_MONITOR_INTERVAL")
        .env_remove("LLMBENCH_NO_MONITOR")
        .output()
        .expect("the fixture bench binary runs")
}

#[test]
fn a_bench_run_writes_monitor_csv_and_says_once_there_is_no_gpu() {
    let out_dir = temp_dir("monitor");
    let out = monitored(&[
        "--bench",
        "ok_",
        "--monitor-interval",
        "0.05",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let no_gpu = t.matches("no GPU (").count();
    let gpus = t.matches(" GPU(s): ").count();
    // Two trials, one line: on a machine without NVIDIA's driver, "no GPU
    // (NVML not found: ...)"; on one with it, the devices found.
    assert_eq!(no_gpu + gpus, 1, "{t}");

    let dir = run_dir(&out_dir);
    let csv = std::fs::read_to_string(dir.join("monitor.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for column in [
        "trial",
        "t_s",
        "host_cpu_pct",
        "host_cpu0_pct",
        "host_mem_used_mib",
        "client_cpu_pct",
        "client_rss_mib",
        "sim_cpu_pct",
        "engine_requests_running",
        "engine_requests_waiting",
    ] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()), "{csv}");
    let cell = |row: &[&str], name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap();
        row[i].to_string()
    };
    for trial in ["ok_chat/sim", "ok_completion/sim"] {
        let mine: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == trial).collect();
        assert!(!mine.is_empty(), "rows of {trial} in {csv}");
        let last = mine.last().unwrap();
        for name in ["host_cpu_pct", "client_rss_mib", "engine_requests_running"] {
            assert!(
                cell(last, name).parse::<f64>().is_ok(),
                "{name} of {trial}: {csv}"
            );
        }
        let times: Vec<f64> = mine.iter().map(|r| r[1].parse().unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "t_s grows: {times:?}"
        );
    }

    let s = summary(&dir);
    for trial in s["trials"].as_array().unwrap() {
        let m = &trial["monitor"];
        assert_eq!(m["interval_s"], 0.05, "{m}");
        assert!(m["samples"].as_u64().unwrap() >= 1, "{m}");
        for series in [
            "host_cpu_pct",
            "client_cpu_pct",
            "sim_cpu_pct",
            "engine_requests_running",
        ] {
            for stat in ["min", "mean", "max"] {
                assert!(m["series"][series][stat].is_f64(), "{series}.{stat} in {m}");
            }
        }
        assert!(
            m["engine_process"]
                .as_str()
                .unwrap()
                .starts_with("the built-in simulator"),
            "{m}"
        );
        assert!(
            m["engine_metrics"]
                .as_str()
                .unwrap()
                .contains("llmbench_sim_requests_waiting"),
            "{m}"
        );
        if no_gpu == 1 {
            assert!(m["gpu"].as_str().unwrap().starts_with("no GPU ("), "{m}");
        }
        // Queue depth against throughput and TTFT: r, or null where the
        // queue never moved (as here: 64 slots, 2 users).
        let waiting = &m["correlation"]["engine_requests_waiting"];
        assert!(waiting["intervals"].as_u64().unwrap() >= 1, "{m}");
        for figure in ["output_tps", "ttft"] {
            let r = &waiting[figure];
            assert!(r.is_null() || r.as_f64().unwrap().abs() <= 1.0, "{m}");
        }
    }
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn no_monitor_writes_no_monitor_csv() {
    let out_dir = temp_dir("no-monitor");
    let out = monitored(&[
        "--bench",
        "ok_chat",
        "--no-monitor",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains("GPU"), "{t}");
    let dir = run_dir(&out_dir);
    assert!(!dir.join("monitor.csv").exists());
    let s = summary(&dir);
    assert!(s["trials"][0].get("monitor").is_none(), "{s}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn the_simulator_serves_its_queue_at_metrics() {
    use llmbench::monitor::engine_metrics::Scraper;
    use llmbench::monitor::Readings;
    let sim = Simulator::start(SimConfig::new()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut scraper = Scraper::new(&sim.url(), Duration::from_secs(5));
    let mut out = Readings::default();
    assert_eq!(scraper.scrape(&runtime, &mut out), None);
    assert_eq!(out.get("engine_requests_running"), Some(0.0));
    assert_eq!(out.get("engine_requests_waiting"), Some(0.0));
    assert!(scraper.describe().contains("llmbench_sim_requests_waiting"));
}

#[cfg(unix)]
#[test]
fn a_launched_engine_has_its_process_and_metrics_sampled() {
    let out_dir = temp_dir("monitor-launch");
    let (file, _port) =
        super::launch::launched_engine_file(&out_dir.with_extension("conf"), "launched", "", "");
    let out = monitored(&[
        "--bench",
        "ok_chat",
        "--engines",
        file.to_str().unwrap(),
        "--monitor-interval",
        "0.05",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let dir = run_dir(&out_dir);
    let trial = &summary(&dir)["trials"][0];
    let pid = trial["engine_pid"].as_u64().unwrap();
    let m = &trial["monitor"];
    assert_eq!(
        m["engine_process"].as_str().unwrap(),
        format!("pid {pid}: engine_cpu_pct, engine_rss_mib"),
    );
    for series in [
        "engine_cpu_pct",
        "engine_rss_mib",
        "engine_requests_running",
    ] {
        assert!(m["series"][series]["max"].is_f64(), "{series} in {m}");
    }
    assert!(
        m["series"]["engine_rss_mib"]["max"].as_f64().unwrap() > 0.0,
        "{m}"
    );
    assert!(
        m["series"].get("sim_cpu_pct").is_none(),
        "not in-process: {m}"
    );
    let _ = std::fs::remove_dir_all(out_dir.with_extension("conf"));
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn the_simulator_counts_requests_waiting_for_a_slot() {
    use llmbench::monitor::engine_metrics::Scraper;
    use llmbench::monitor::Readings;
    use std::io::Write;
    let sim = Simulator::start(SimConfig::new().max_concurrency(1)).unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let body = r#"{"model":"llmbench-sim","messages":[{"role":"user","content":"hi"}],"max_tokens":2000,"stream":true}"#;
    // Three long streams at once: one holds the only slot, two wait.
    let streams: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: \
                 application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            s
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut scraper = Scraper::new(&sim.url(), Duration::from_secs(5));
    let mut scrape = || {
        let mut out = Readings::default();
        assert_eq!(scraper.scrape(&runtime, &mut out), None);
        (
            out.get("engine_requests_running"),
            out.get("engine_requests_waiting"),
        )
    };
    let until = |scrape: &mut dyn FnMut() -> (Option<f64>, Option<f64>), want| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = scrape();
            if got == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(
        until(&mut scrape, (Some(1.0), Some(2.0))),
        (Some(1.0), Some(2.0))
    );
    // Clients that leave stop counting, waiting or running.
    drop(streams);
    assert_eq!(
        until(&mut scrape, (Some(0.0), Some(0.0))),
        (Some(0.0), Some(0.0))
    );
}

#[test]
fn an_ollama_server_is_read_at_api_ps() {
    use llmbench::monitor::engine_metrics::Scraper;
    use llmbench::monitor::Readings;
    use llmbench::sim::Protocol;
    let sim = Simulator::start(SimConfig::new().protocols(&[Protocol::Ollama])).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut scraper = Scraper::ollama(&sim.url(), Duration::from_secs(5));
    let mut out = Readings::default();
    assert_eq!(scraper.scrape(&runtime, &mut out), None);
    assert_eq!(out.get("engine_models_loaded"), Some(1.0));
    // Ollama has no /metrics: the usual scraper switches itself off.
    let mut metrics = Scraper::new(&sim.url(), Duration::from_secs(5));
    let warning = metrics.scrape(&runtime, &mut out).unwrap();
    assert!(warning.contains("HTTP 404"), "{warning}");
}

#[test]
fn an_engine_given_by_pid_has_its_process_sampled() {
    // An engine this run did not start: a simulator process of its own.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sim_engine = env!("CARGO_BIN_EXE_sim-engine");
    let mut child = Command::new(sim_engine)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sim-engine did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out_dir = temp_dir("monitor-pid");
    let spec = format!("openai={url},name=local,pid={}", child.id());
    let out = fixture(&[
        "--bench",
        "ok_chat",
        "--engine",
        &spec,
        "--monitor-interval",
        "0.05",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let dir = run_dir(&out_dir);
    let s = summary(&dir);
    let m = &s["trials"][0]["monitor"];
    assert_eq!(
        m["engine_process"],
        format!("pid {}: engine_cpu_pct, engine_rss_mib", child.id()),
        "{m}"
    );
    assert!(
        m["series"]["engine_rss_mib"]["max"].as_f64().unwrap() > 1.0,
        "{m}"
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}

//! The Kubernetes manifests in `deploy/kubernetes/` (JSON, which kubectl
//! applies as it does YAML, so they parse here without a YAML crate):
//! an Indexed Job whose pods are the shards of one run, starting together
//! and writing to one volume, and the Job that merges them.

#![allow(clippy::unwrap_used)] // a test helper that fails should panic

use std::path::Path;

use serde_json::Value;

fn manifest(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of environment variable `name` in `container`.
fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {container}"))
}

/// The claim each volume mounted at `/results` comes from.
fn results_claim(pod: &Value) -> String {
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/results")
        .unwrap_or_else(|| panic!("nothing mounted at /results in {container}"));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_indexed_job_runs_one_shard_per_pod_from_a_common_start_into_one_volume() {
    let list = manifest("shards.json");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    let claim = items
        .iter()
        .find(|i| i["kind"] == "PersistentVolumeClaim")
        .unwrap();
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteMany");
    let job = items.iter().find(|i| i["kind"] == "Job").unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "every shard at once");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];

    // The index comes from the Job, and the shard count matches it.
    let index = env(container, "JOB_COMPLETION_INDEX");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let shard = env(container, "LLMBENCH_SHARD")["value"].as_str().unwrap();
    assert_eq!(shard, format!("$(JOB_COMPLETION_INDEX)/{n}"));
    for i in 0..n {
        let expanded = shard.replace("$(JOB_COMPLETION_INDEX)", &i.to_string());
        let parsed: llmbench::load::Shard = expanded.parse().unwrap();
        assert_eq!((u64::from(parsed.index), u64::from(parsed.count)), (i, n));
    }
    assert!(env(container, "LLMBENCH_START_AT")["value"].is_string());
    let out = env(container, "LLMBENCH_OUT")["value"].as_str().unwrap();
    assert!(
        out.starts_with("/results/") && out.contains("$(JOB_COMPLETION_INDEX)"),
        "each shard its own directory on the shared volume: {out}"
    );
    assert!(env(container, "LLMBENCH_ENGINE")["value"].is_string());
    assert_eq!(
        results_claim(pod),
        claim["metadata"]["name"].as_str().unwrap()
    );
}

#[test]
fn the_merge_job_reads_the_same_volume_and_merges_every_shard() {
    let shards = manifest("shards.json");
    let claim = shards["items"][0]["metadata"]["name"].as_str().unwrap();
    let job = manifest("merge.json");
    assert_eq!(job["kind"], "Job");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(results_claim(pod), claim);
    let command: Vec<&str> = pod["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let line = command.join(" ");
    assert!(
        line.contains("llmbench merge /results/shard-*/") && line.contains("--out /results/"),
        "{line}"
    );
}

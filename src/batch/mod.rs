//! Azure Batch: the advisor (which account mode, node type and pool shape a workload should get) and the pool, job
//! and task documents for the Batch REST API (2025-06-01 field names; `az batch pool|job|task create --json-file`).
//! Pure: traits in, plan and JSON out; nothing here talks to Azure or writes files.
//!
//! The rules follow Azure Batch's own guidance:
//! - Pool allocation mode: Batch service unless the user needs a custom VNet / private networking, or Azure Hybrid
//!   Benefit, which (`licenseType`) exists for Windows images only. User subscription mode needs a Key Vault and the
//!   subscription registered for Batch.
//! - Multi-instance (MPI) tasks: dedicated nodes (a preempted Spot node kills the whole MPI job), inter-node
//!   communication on, `taskSlotsPerNode = 1` (otherwise the multi-instance task is never scheduled and stays active).
//! - Independent scenes: Spot nodes (`targetLowPriorityNodes`) for development, several task slots per node (at most
//!   min(4 × cores, 256)), task retries so preempted tasks rerun and resume.

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T, BatchError> {
    Err(BatchError(msg.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One big scene across nodes: an MPI multi-instance task.
    Mpi,
    /// Many independent scenes: one task per scene.
    Scenes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    /// Long-running work that must finish on time.
    Prod,
    /// Short tasks that tolerate interruption.
    Dev,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Windows,
}

/// What the user tells the advisor about the workload.
#[derive(Clone, Debug)]
pub struct Traits {
    pub workload: Workload,
    pub env: Env,
    pub os: Os,
    pub custom_vnet: bool,
    pub windows_licenses: bool,
    /// Node-to-node communication wanted for a scenes pool too.
    pub inter_node: bool,
    /// Spot asked for explicitly (`Some(true)`), refused (`Some(false)`), or left to the advisor.
    pub spot: Option<bool>,
    pub nodes: u32,
    pub vm_size: String,
    pub cores: u32,
    pub slots: Option<u32>,
    /// GPU render profile: render tasks after the mesh tasks, on GPU nodes.
    pub render: bool,
    /// Accept combinations the advisor calls harmful (e.g. MPI on Spot).
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AllocationMode {
    BatchService,
    UserSubscription,
}

/// The recommendation, with one line of reasoning per decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub workload: Workload,
    pub os: Os,
    pub allocation_mode: AllocationMode,
    pub spot: bool,
    pub inter_node_communication: bool,
    pub task_slots_per_node: u32,
    pub required_slots: u32,
    pub nodes: u32,
    pub vm_size: String,
    pub cores: u32,
    /// `--threads` for each task so concurrent tasks on a node do not oversubscribe it.
    pub threads_per_task: u32,
    /// MPI ranks per node (MPI workload).
    pub ranks_per_node: u32,
    pub hybrid_benefit: bool,
    /// GPU render tasks after the mesh tasks.
    pub render: bool,
    pub reasons: Vec<String>,
}

/// True for Azure's GPU VM families (N-series: NC, ND, NV, and their variants).
pub fn is_gpu_vm_size(vm: &str) -> bool {
    let v = vm.to_ascii_lowercase();
    let family = v.strip_prefix("standard_").unwrap_or(&v);
    family.starts_with('n') && family.chars().nth(1).is_some_and(|c| matches!(c, 'c' | 'd' | 'v' | 'g'))
}

/// Largest pool with inter-node communication that Batch service mode is planned for here.
pub const MAX_INTER_NODE_BATCH_SERVICE: u32 = 100;

pub fn advise(t: &Traits) -> Result<Plan, BatchError> {
    let mut why = vec!["Platform: an Azure Batch pool, not plain VMs or VM scale sets — Batch provisions the nodes, schedules tasks into slots, retries preempted tasks and scales the pool.".to_string()];
    if t.nodes == 0 || t.cores == 0 {
        return refuse("--nodes and --cores must be at least 1");
    }
    if t.windows_licenses && t.os == Os::Linux {
        return refuse("Azure Hybrid Benefit (licenseType) applies to Windows images only: a Linux pool gains nothing from it, and it is no reason for user subscription mode");
    }
    if t.workload == Workload::Mpi && t.os == Os::Windows {
        return refuse("the MPI profile runs Open MPI on Linux nodes; use --os linux (or the scenes workload on Windows)");
    }
    if t.render && t.os == Os::Windows {
        return refuse("the GPU render profile runs on Linux nodes (Vulkan through the NVIDIA driver); use --os linux");
    }
    if t.render && !is_gpu_vm_size(&t.vm_size) && !t.force {
        return refuse(format!(
            "--render needs GPU nodes, and {} has no GPU: pick an N-series size, e.g. --vm-size Standard_NC4as_T4_v3 --cores 4 (or --force to render on the CPU with lavapipe)",
            t.vm_size
        ));
    }
    let allocation_mode = if t.custom_vnet {
        why.push("Allocation mode: user subscription — a custom VNet / private networking was asked for; this needs a Key Vault and the subscription registered with Microsoft.Batch.".into());
        AllocationMode::UserSubscription
    } else if t.windows_licenses {
        why.push("Allocation mode: user subscription — Azure Hybrid Benefit for Windows (licenseType Windows_Server) was asked for; this needs a Key Vault and the subscription registered with Microsoft.Batch.".into());
        AllocationMode::UserSubscription
    } else {
        why.push("Allocation mode: Batch service — no custom VNet and no Windows Hybrid Benefit needed, so no Key Vault or subscription registration.".into());
        AllocationMode::BatchService
    };
    let spot = match (t.workload, t.spot) {
        (Workload::Mpi, Some(true)) if !t.force => {
            return refuse("an MPI multi-instance task on Spot nodes: one preempted node kills the whole MPI job; use dedicated nodes (or --force)")
        }
        (Workload::Mpi, Some(true)) => {
            why.push("Nodes: Spot, forced — any preemption restarts the whole MPI job.".into());
            true
        }
        (Workload::Mpi, _) => {
            why.push("Nodes: dedicated — an MPI job dies with any preempted node, so it must not run on Spot.".into());
            false
        }
        (Workload::Scenes, Some(s)) => {
            why.push(format!("Nodes: {} as asked.", if s { "Spot" } else { "dedicated" }));
            s
        }
        (Workload::Scenes, None) if t.env == Env::Dev => {
            why.push(
                "Nodes: Spot (targetLowPriorityNodes) — short development tasks tolerate preemption; retries rerun them and --resume keeps finished tiles."
                    .into(),
            );
            true
        }
        (Workload::Scenes, None) => {
            why.push("Nodes: dedicated — production scenes must finish on time.".into());
            false
        }
    };
    let max_slots = (4 * t.cores).min(256);
    let (slots, inter_node) = match t.workload {
        Workload::Mpi => {
            if t.slots.is_some_and(|s| s != 1) {
                return refuse("an MPI multi-instance task needs taskSlotsPerNode = 1: with more slots it is never scheduled and stays active forever");
            }
            why.push("Pool: inter-node communication on, taskSlotsPerNode = 1 — required for a multi-instance task.".into());
            (1, true)
        }
        Workload::Scenes => {
            let s = t.slots.unwrap_or(t.cores.min(256));
            if s == 0 || s > max_slots {
                return refuse(format!("taskSlotsPerNode {s} is outside 1..={max_slots} (min(4 × {} cores, 256))", t.cores));
            }
            why.push(format!("Pool: {s} task slots per node — several scenes mesh at once on each node, one task per scene."));
            if t.inter_node {
                why.push("Pool: inter-node communication on, as asked (nodes can reach each other; tasks still run in parallel slots).".into());
            }
            (s, t.inter_node)
        }
    };
    if inter_node && allocation_mode == AllocationMode::BatchService && t.nodes > MAX_INTER_NODE_BATCH_SERVICE {
        return refuse(format!(
            "{} nodes with inter-node communication in Batch service mode: keep it to {MAX_INTER_NODE_BATCH_SERVICE} nodes, split the work, or use user subscription mode",
            t.nodes
        ));
    }
    let required_slots = 1;
    let threads_per_task = (t.cores * required_slots / slots).max(1);
    let ranks_per_node = if t.workload == Workload::Mpi { t.cores } else { 1 };
    if t.workload == Workload::Mpi {
        why.push(format!("MPI: {} ranks per node ({} in all), one per core; ranks sharing a node split its cores.", ranks_per_node, ranks_per_node * t.nodes));
    } else {
        why.push(format!("Tasks: --threads {threads_per_task} each (cores × requiredSlots / taskSlotsPerNode), so concurrent tasks do not oversubscribe a node; 3 retries each."));
    }
    if t.render {
        why.push(format!(
            "Render: {} nodes{} run a render task per scene after its mesh task (task dependencies): `terrafarm render` draws the top-down hillshade and an oblique view into the scene's renders/ folder. The NVIDIA driver comes from the NvidiaGpuDriverLinux VM extension; the start task adds the Vulkan loader and lavapipe as a fallback.",
            t.vm_size,
            if is_gpu_vm_size(&t.vm_size) { "" } else { " (no GPU: forced, lavapipe renders on the CPU)" }
        ));
    }
    Ok(Plan {
        workload: t.workload,
        os: t.os,
        allocation_mode,
        spot,
        inter_node_communication: inter_node,
        task_slots_per_node: slots,
        required_slots,
        nodes: t.nodes,
        vm_size: t.vm_size.clone(),
        cores: t.cores,
        threads_per_task,
        ranks_per_node,
        hybrid_benefit: t.windows_licenses && t.os == Os::Windows,
        render: t.render,
        reasons: why,
    })
}

/// Where the job reads from and writes to, and how pool and job are named.
#[derive(Clone, Debug)]
pub struct RenderSpec {
    pub pool_id: String,
    pub job_id: String,
    /// Inputs as the nodes see them (paths or URLs); one task per input for scenes, one scene for MPI.
    pub inputs: Vec<String>,
    /// `--out` as the nodes see it.
    pub out: String,
    /// Extra `mesh` flags (e.g. `--max-error 1 --tile-size 256`).
    pub mesh_args: Vec<String>,
    /// Autoscale the scenes pool on $PendingTasks instead of a fixed size.
    pub autoscale: bool,
    /// Storage account for `az://` addresses (not secret; set as AZURE_STORAGE_ACCOUNT_NAME on the job).
    pub storage_account: Option<String>,
    /// How tasks authenticate to blob storage when an input or `--out` is a blob address.
    pub blob_auth: BlobAuth,
    /// Client id of the pool's user-assigned managed identity (not secret; AZURE_CLIENT_ID).
    pub identity_client_id: Option<String>,
}

/// Blob credentials on the nodes. Neither puts a secret into a generated document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BlobAuth {
    /// The pool's managed identity (assigned to the pool through ARM: the Batch data-plane API that
    /// `az batch pool create --json-file` uses cannot assign one).
    Identity,
    /// A SAS supplied at submit time: deploy/submit.sh reads it from TERRAFARM_SAS and adds it to the job's
    /// environment (AZURE_STORAGE_SAS_TOKEN) in a temporary copy; it is never written into a committed file.
    Sas,
}

/// Environment settings (names and non-secret values) the tasks need to reach blob storage, plus the names of the
/// variables the nodes will have at run time (for `mpirun -x`).
type BlobEnv = (Vec<(String, String)>, Vec<String>);

fn blob_env(spec: &RenderSpec) -> Result<BlobEnv, BatchError> {
    let addrs: Vec<&String> = spec.inputs.iter().chain(std::iter::once(&spec.out)).filter(|s| crate::store::is_remote(s)).collect();
    if addrs.is_empty() {
        return Ok((vec![], vec![]));
    }
    if let Some(a) = addrs.iter().find(|a| a.contains('?')) {
        return refuse(format!(
            "{} carries a query (a SAS?): it would sit in the task's command line, readable by anyone who can list tasks; use --blob-auth sas and supply the SAS at submit time (TERRAFARM_SAS)",
            a.split('?').next().unwrap_or("")
        ));
    }
    let mut env = Vec::new();
    match &spec.storage_account {
        Some(acct) => {
            if acct.is_empty() || !acct.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) || acct.len() > 24 {
                return refuse(format!("--storage-account '{acct}' is not a storage account name (3-24 lowercase letters and digits)"));
            }
            env.push(("AZURE_STORAGE_ACCOUNT_NAME".to_string(), acct.clone()));
        }
        None if addrs.iter().any(|a| a.starts_with("az://") || a.starts_with("azure://")) => {
            return refuse("az:// addresses need --storage-account (the nodes have no other way to know the account)");
        }
        None => {}
    }
    let mut names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    match spec.blob_auth {
        BlobAuth::Identity => {
            if let Some(id) = &spec.identity_client_id {
                check_word("--identity-client-id", id)?;
                env.push(("AZURE_CLIENT_ID".to_string(), id.clone()));
                names.push("AZURE_CLIENT_ID".into());
            }
        }
        BlobAuth::Sas => names.push("AZURE_STORAGE_SAS_TOKEN".into()),
    }
    Ok((env, names))
}

fn check_word(what: &str, s: &str) -> Result<(), BatchError> {
    // Environment variables ($AZ_BATCH_…) may expand; command substitution and quoting tricks may not.
    if s.is_empty() || s.contains(['\'', '"', '`', '\\', '\n']) || s.contains("$(") {
        return refuse(format!("{what} '{s}' must be non-empty and free of quotes, backticks, backslashes and $( (it is placed in a shell command line)"));
    }
    Ok(())
}

fn batch_id(s: &str) -> Result<(), BatchError> {
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return refuse(format!("Batch id '{s}' must be 1-64 letters, digits, '-' or '_'"));
    }
    Ok(())
}

const BIN: &str = "$AZ_BATCH_NODE_SHARED_DIR/terrafarm";

/// The pool document (`az batch pool create --json-file`).
pub fn pool(p: &Plan, spec: &RenderSpec) -> Result<Value, BatchError> {
    batch_id(&spec.pool_id)?;
    let vm = match p.os {
        Os::Linux => json!({
            "imageReference": { "publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts", "version": "latest" },
            "nodeAgentSKUId": "batch.node.ubuntu 22.04"
        }),
        Os::Windows => {
            let mut v = json!({
                "imageReference": { "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter", "version": "latest" },
                "nodeAgentSKUId": "batch.node.windows amd64"
            });
            if p.hybrid_benefit {
                v["licenseType"] = json!("Windows_Server");
            }
            v
        }
    };
    let mut vm = vm;
    if p.render {
        // The NVIDIA driver (with its Vulkan driver) through Azure's GPU driver extension, on the plain Ubuntu image.
        vm["extensions"] = json!([{
            "name": "nvidia-gpu-driver",
            "publisher": "Microsoft.HpcCompute",
            "type": "NvidiaGpuDriverLinux",
            "typeHandlerVersion": "1.6",
            "autoUpgradeMinorVersion": true
        }]);
    }
    // proj-data: PROJ's geoid grids (EGM96), which `mesh --format 3dtiles` adds to EGM96 heights (`--geoid auto`).
    let packages = if p.render { "openmpi-bin proj-data libvulkan1 mesa-vulkan-drivers" } else { "openmpi-bin proj-data" };
    // The binary comes from the Batch account's linked storage (container "terrafarm"): no URL or SAS in here.
    let start = match p.os {
        Os::Linux => json!({
            "commandLine": format!("/bin/bash -c 'set -e; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages}; install -m 0755 \"$AZ_BATCH_TASK_WORKING_DIR/terrafarm\" \"{BIN}\"; \"{BIN}\" --version'"),
            "resourceFiles": [{ "autoStorageContainerName": "terrafarm", "blobPrefix": "terrafarm", "fileMode": "0755" }],
            "userIdentity": { "autoUser": { "scope": "pool", "elevationLevel": "admin" } },
            "maxTaskRetryCount": 2,
            "waitForSuccess": true
        }),
        Os::Windows => json!({
            "commandLine": "cmd /c copy /y %AZ_BATCH_TASK_WORKING_DIR%\\terrafarm.exe %AZ_BATCH_NODE_SHARED_DIR%\\terrafarm.exe",
            "resourceFiles": [{ "autoStorageContainerName": "terrafarm", "blobPrefix": "terrafarm.exe" }],
            "userIdentity": { "autoUser": { "scope": "pool", "elevationLevel": "admin" } },
            "maxTaskRetryCount": 2,
            "waitForSuccess": true
        }),
    };
    let mut doc = json!({
        "id": spec.pool_id,
        "vmSize": p.vm_size,
        "virtualMachineConfiguration": vm,
        "enableInterNodeCommunication": p.inter_node_communication,
        "taskSlotsPerNode": p.task_slots_per_node,
        "taskSchedulingPolicy": { "nodeFillType": if p.workload == Workload::Mpi { "spread" } else { "pack" } },
        "startTask": start
    });
    if spec.autoscale && p.workload == Workload::Scenes {
        let target = if p.spot { "$TargetLowPriorityNodes" } else { "$TargetDedicatedNodes" };
        let other = if p.spot { "$TargetDedicatedNodes" } else { "$TargetLowPriorityNodes" };
        doc["enableAutoScale"] = json!(true);
        doc["autoScaleEvaluationInterval"] = json!("PT5M");
        doc["autoScaleFormula"] = json!(format!(
            "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);\n\
             $tasks = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : max($PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));\n\
             {target} = max(0, min(ceil($tasks / {slots}), {max}));\n\
             {other} = 0;\n\
             $NodeDeallocationOption = taskcompletion;",
            slots = p.task_slots_per_node,
            max = p.nodes
        ));
    } else if p.spot {
        doc["targetDedicatedNodes"] = json!(0);
        doc["targetLowPriorityNodes"] = json!(p.nodes);
    } else {
        doc["targetDedicatedNodes"] = json!(p.nodes);
        doc["targetLowPriorityNodes"] = json!(0);
    }
    Ok(doc)
}

/// The job document (`az batch job create --json-file`).
pub fn job(p: &Plan, spec: &RenderSpec) -> Result<Value, BatchError> {
    batch_id(&spec.job_id)?;
    batch_id(&spec.pool_id)?;
    let mut doc = json!({
        "id": spec.job_id,
        "poolInfo": { "poolId": spec.pool_id },
        "onAllTasksComplete": "terminatejob",
        "constraints": { "maxTaskRetryCount": if p.workload == Workload::Mpi { 1 } else { 3 } }
    });
    if p.render {
        doc["usesTaskDependencies"] = json!(true);
    }
    let (env, _) = blob_env(spec)?;
    if !env.is_empty() {
        doc["commonEnvironmentSettings"] = env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
    }
    Ok(doc)
}

fn mesh_line(spec: &RenderSpec, input: &str, threads: u32) -> Result<String, BatchError> {
    check_word("input", input)?;
    check_word("--out", &spec.out)?;
    let mut line = format!("\"{BIN}\" mesh \"{input}\" --out \"{}\" --threads {threads} --resume", spec.out);
    for a in &spec.mesh_args {
        check_word("mesh argument", a)?;
        line.push_str(&format!(" \"{a}\""));
    }
    Ok(line)
}

/// The scene name `mesh` gives an input: `--scene` among the mesh arguments, else the input's file stem.
fn scene_of(spec: &RenderSpec, input: &str, i: usize) -> String {
    let mut args = spec.mesh_args.iter();
    while let Some(a) = args.next() {
        if let Some(v) = a.strip_prefix("--scene=") {
            return v.to_string();
        }
        if a == "--scene" {
            if let Some(v) = args.next() {
                return v.clone();
            }
        }
    }
    crate::config::scene_stem(input, i)
}

/// A render task for one scene: runs after `after` (its mesh task) and writes the top-down hillshade and an
/// oblique hypsometric view into the scene's renders/ folder, on the node's GPU.
fn render_task(id: &str, after: &str, spec: &RenderSpec, input: &str, i: usize) -> Result<Value, BatchError> {
    let scene = format!("{}/{}", spec.out.trim_end_matches('/'), scene_of(spec, input, i));
    check_word("scene", &scene)?;
    let cmd = format!(
        "/bin/bash -c '\"{BIN}\" render \"{scene}\" --camera top --style hillshade && \"{BIN}\" render \"{scene}\" --camera oblique --style hypsometric'"
    );
    Ok(json!({
        "id": id,
        "commandLine": cmd,
        "dependsOn": { "taskIds": [after] },
        "constraints": { "maxTaskRetryCount": 2 }
    }))
}

/// The task documents (`az batch task create --json-file` takes the array).
pub fn tasks(p: &Plan, spec: &RenderSpec) -> Result<Vec<Value>, BatchError> {
    if spec.inputs.is_empty() {
        return refuse("no inputs to mesh");
    }
    match p.workload {
        Workload::Mpi => {
            if spec.inputs.len() != 1 {
                return refuse("the MPI profile meshes one scene per job: give one input");
            }
            let r = p.ranks_per_node;
            let mesh = mesh_line(spec, &spec.inputs[0], 1)?;
            // Ranks on other nodes are started by Open MPI's daemons, which do not inherit the task's environment:
            // forward the blob settings explicitly.
            let forward: String = blob_env(spec)?.1.iter().map(|n| format!("-x {n} ")).collect();
            // $AZ_BATCH_HOST_LIST is "ip1,ip2,…"; Open MPI wants "ip1:R,ip2:R".
            let cmd = format!(
                "/bin/bash -c 'R={r}; H=$(echo \"$AZ_BATCH_HOST_LIST\" | sed \"s/,/:$R,/g\"):$R; N=$(( $(echo \"$AZ_BATCH_HOST_LIST\" | tr \",\" \"\\n\" | wc -l) * R )); \
                 cd \"$AZ_BATCH_TASK_SHARED_DIR\" && exec mpirun --allow-run-as-root -np $N --host $H --wdir \"$AZ_BATCH_TASK_SHARED_DIR\" {forward}{mesh}'"
            );
            let coord = format!("/bin/bash -c 'test -x \"{BIN}\" && mkdir -p \"$AZ_BATCH_TASK_SHARED_DIR\"'");
            let mut out = vec![json!({
                "id": "mesh-mpi",
                "commandLine": cmd,
                "multiInstanceSettings": { "numberOfInstances": p.nodes, "coordinationCommandLine": coord },
                "userIdentity": { "autoUser": { "scope": "pool", "elevationLevel": "admin" } },
                "constraints": { "maxTaskRetryCount": 1 }
            })];
            if p.render {
                out.push(render_task("render-mpi", "mesh-mpi", spec, &spec.inputs[0], 0)?);
            }
            Ok(out)
        }
        Workload::Scenes => {
            blob_env(spec)?;
            spec.inputs
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    let cmd = match p.os {
                        Os::Linux => format!("/bin/bash -c '{}'", mesh_line(spec, input, p.threads_per_task)?),
                        Os::Windows => {
                            check_word("input", input)?;
                            format!(
                                "cmd /c %AZ_BATCH_NODE_SHARED_DIR%\\terrafarm.exe mesh \"{input}\" --out \"{}\" --threads {} --resume",
                                spec.out, p.threads_per_task
                            )
                        }
                    };
                    Ok(json!({
                        "id": format!("scene-{i:05}"),
                        "commandLine": cmd,
                        "requiredSlots": p.required_slots,
                        "constraints": { "maxTaskRetryCount": 3 }
                    }))
                })
                .collect::<Result<Vec<Value>, BatchError>>()
                .and_then(|mut out| {
                    if p.render {
                        for (i, input) in spec.inputs.iter().enumerate() {
                            out.push(render_task(&format!("render-{i:05}"), &format!("scene-{i:05}"), spec, input, i)?);
                        }
                    }
                    Ok(out)
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(workload: Workload, env: Env) -> Traits {
        Traits {
            workload,
            env,
            os: Os::Linux,
            custom_vnet: false,
            windows_licenses: false,
            inter_node: false,
            spot: None,
            nodes: 4,
            vm_size: "Standard_D16as_v5".into(),
            cores: 16,
            slots: None,
            render: false,
            force: false,
        }
    }

    #[test]
    fn gpu_render_profile_needs_gpu_nodes_and_orders_render_after_mesh() {
        let mut t = traits(Workload::Scenes, Env::Prod);
        t.render = true;
        assert!(advise(&t).unwrap_err().0.contains("N-series"));
        t.vm_size = "Standard_NC4as_T4_v3".into();
        t.cores = 4;
        let p = advise(&t).unwrap();
        assert!(p.render && p.reasons.iter().any(|r| r.starts_with("Render:")));
        let spec = RenderSpec {
            pool_id: "p".into(),
            job_id: "j".into(),
            inputs: vec!["a/fuji.tif".into(), "b/alps.png".into()],
            out: "az://tiles/run/".into(),
            mesh_args: vec![],
            autoscale: false,
            storage_account: Some("acct".into()),
            blob_auth: BlobAuth::Identity,
            identity_client_id: None,
        };
        let pool = pool(&p, &spec).unwrap();
        assert_eq!(pool["virtualMachineConfiguration"]["extensions"][0]["type"], "NvidiaGpuDriverLinux");
        assert!(pool["startTask"]["commandLine"].as_str().unwrap().contains("mesa-vulkan-drivers"));
        assert_eq!(job(&p, &spec).unwrap()["usesTaskDependencies"], true);
        let tasks = tasks(&p, &spec).unwrap();
        assert_eq!(tasks.len(), 4);
        assert_eq!(tasks[2]["id"], "render-00000");
        assert_eq!(tasks[2]["dependsOn"]["taskIds"][0], "scene-00000");
        assert!(tasks[3]["commandLine"].as_str().unwrap().contains("render \"az://tiles/run/alps\" --camera top"));
        // The scene name follows --scene when the mesh arguments set one.
        let spec = RenderSpec { mesh_args: vec!["--scene".into(), "big".into()], inputs: vec!["x.f32".into()], ..spec };
        t.workload = Workload::Mpi;
        t.slots = None;
        let p = advise(&t).unwrap();
        let tasks = super::tasks(&p, &spec).unwrap();
        assert_eq!(tasks[1]["dependsOn"]["taskIds"][0], "mesh-mpi");
        assert!(tasks[1]["commandLine"].as_str().unwrap().contains("az://tiles/run/big"));
        assert!(!is_gpu_vm_size("Standard_D16as_v5") && is_gpu_vm_size("Standard_ND96asr_v4") && is_gpu_vm_size("standard_nv36ads_a10_v5"));
        t.os = Os::Windows;
        assert!(advise(&t).is_err());
    }

    /// Classic decision (a): long-running production MPI on Linux, cost-minded, "use Hybrid Benefit where
    /// possible" → Batch service mode (Hybrid Benefit does not apply to Linux) with dedicated nodes; short
    /// development tasks → Spot, still Batch service mode.
    #[test]
    fn production_mpi_is_batch_service_dedicated_and_dev_is_spot() {
        let p = advise(&traits(Workload::Mpi, Env::Prod)).unwrap();
        assert_eq!((p.allocation_mode, p.spot, p.task_slots_per_node, p.inter_node_communication), (AllocationMode::BatchService, false, 1, true));
        let mut hb = traits(Workload::Mpi, Env::Prod);
        hb.windows_licenses = true;
        assert!(advise(&hb).unwrap_err().0.contains("Windows images only"));
        let d = advise(&traits(Workload::Scenes, Env::Dev)).unwrap();
        assert_eq!((d.allocation_mode, d.spot), (AllocationMode::BatchService, true));
    }

    /// Classic decision (b): many scenes as fast as possible, with node-to-node communication and least effort →
    /// a Batch pool with inter-node communication plus parallel task slots on each node.
    #[test]
    fn many_scenes_with_node_to_node_get_inter_node_and_slots() {
        let mut t = traits(Workload::Scenes, Env::Prod);
        t.inter_node = true;
        let p = advise(&t).unwrap();
        assert!(p.inter_node_communication && p.task_slots_per_node > 1);
        assert!(p.reasons[0].contains("not plain VMs or VM scale sets"));
        assert_eq!(p.threads_per_task, 1);
    }

    #[test]
    fn harmful_combinations_are_refused() {
        let mut t = traits(Workload::Mpi, Env::Dev);
        t.spot = Some(true);
        assert!(advise(&t).unwrap_err().0.contains("preempted"));
        t.force = true;
        assert!(advise(&t).unwrap().spot);
        let mut t = traits(Workload::Mpi, Env::Prod);
        t.slots = Some(4);
        assert!(advise(&t).unwrap_err().0.contains("never scheduled"));
        let mut t = traits(Workload::Mpi, Env::Prod);
        t.nodes = 101;
        assert!(advise(&t).unwrap_err().0.contains("inter-node"));
        t.custom_vnet = true;
        assert_eq!(advise(&t).unwrap().allocation_mode, AllocationMode::UserSubscription);
        let mut t = traits(Workload::Scenes, Env::Dev);
        t.slots = Some(65);
        assert!(advise(&t).unwrap_err().0.contains("1..=64"));
    }

    #[test]
    fn windows_hybrid_benefit_means_user_subscription_and_license_type() {
        let mut t = traits(Workload::Scenes, Env::Prod);
        t.os = Os::Windows;
        t.windows_licenses = true;
        let p = advise(&t).unwrap();
        assert_eq!(p.allocation_mode, AllocationMode::UserSubscription);
        let spec = RenderSpec {
            pool_id: "p".into(),
            job_id: "j".into(),
            inputs: vec!["a.png".into()],
            out: "out".into(),
            mesh_args: vec![],
            autoscale: false,
            storage_account: None,
            blob_auth: BlobAuth::Identity,
            identity_client_id: None,
        };
        assert_eq!(pool(&p, &spec).unwrap()["virtualMachineConfiguration"]["licenseType"], "Windows_Server");
    }

    #[test]
    fn blob_outputs_get_settings_but_never_secrets() {
        let p = advise(&traits(Workload::Mpi, Env::Prod)).unwrap();
        let mut spec = RenderSpec {
            pool_id: "p".into(),
            job_id: "j".into(),
            inputs: vec!["a.f32".into()],
            out: "az://tiles/run".into(),
            mesh_args: vec![],
            autoscale: false,
            storage_account: None,
            blob_auth: BlobAuth::Sas,
            identity_client_id: None,
        };
        assert!(job(&p, &spec).unwrap_err().0.contains("--storage-account"));
        spec.storage_account = Some("terrafarmdata".into());
        let j = job(&p, &spec).unwrap();
        assert_eq!(j["commonEnvironmentSettings"], json!([{ "name": "AZURE_STORAGE_ACCOUNT_NAME", "value": "terrafarmdata" }]));
        let cmd = tasks(&p, &spec).unwrap()[0]["commandLine"].as_str().unwrap().to_string();
        assert!(cmd.contains("-x AZURE_STORAGE_ACCOUNT_NAME -x AZURE_STORAGE_SAS_TOKEN "), "{cmd}");
        spec.out = "https://acct.blob.core.windows.net/tiles/run?sv=1&sig=secret".into();
        assert!(job(&p, &spec).unwrap_err().0.contains("submit time"));
        spec.out = "out".into();
        assert!(job(&p, &spec).unwrap().get("commonEnvironmentSettings").is_none());
    }

    #[test]
    fn shell_metacharacters_are_refused() {
        let p = advise(&traits(Workload::Scenes, Env::Dev)).unwrap();
        let spec = RenderSpec {
            pool_id: "p".into(),
            job_id: "j".into(),
            inputs: vec!["a'; rm -rf /".into()],
            out: "out".into(),
            mesh_args: vec![],
            autoscale: false,
            storage_account: None,
            blob_auth: BlobAuth::Identity,
            identity_client_id: None,
        };
        assert!(tasks(&p, &spec).is_err());
    }
}

#!/usr/bin/env python3
"""Offline validator for terrafarm's Azure Batch documents.

The schema comes from the official PyPI `azure-batch` SDK (14.2.0, msrest models): each model's `_attribute_map`
gives the REST keys and their types, `_validation` the required fields, and the enum classes the allowed values.
The SDK itself accepts unknown keys and coerces types, so this walks the JSON and checks keys, types and required
fields itself, then the cross-field rules terrafarm's advisor encodes.

Note: azure-batch 14.2.0 models REST API 2024-07-01.20.0; terrafarm targets 2025-06-01, which keeps these fields.

Usage: validate_batch.py DIR...          (each DIR holds pool.json, job.json, tasks.json)
       validate_batch.py --self-test DIR (also proves the validator rejects broken documents)
"""
import copy, enum, json, os, re, sys

import azure.batch.models as M

DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def check(value, typ, path, errors):
    if typ.startswith("[") and typ.endswith("]"):
        if not isinstance(value, list):
            return errors.append(f"{path}: expected a list of {typ[1:-1]}")
        for i, v in enumerate(value):
            check(v, typ[1:-1], f"{path}[{i}]", errors)
        return
    if typ.startswith("{") and typ.endswith("}"):
        if not isinstance(value, dict):
            return errors.append(f"{path}: expected an object")
        for k, v in value.items():
            check(v, typ[1:-1], f"{path}.{k}", errors)
        return
    if typ == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__}")
    elif typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {type(value).__name__}")
    elif typ == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {type(value).__name__}")
    elif typ == "duration":
        if not isinstance(value, str) or not DURATION.match(value):
            errors.append(f"{path}: expected an ISO 8601 duration like PT5M")
    elif typ in ("iso-8601", "float", "long", "bytearray"):
        pass
    else:
        cls = getattr(M, typ, None)
        if cls is None:
            return errors.append(f"{path}: unknown model type {typ}")
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            allowed = {e.value.lower() for e in cls}
            if not isinstance(value, str) or value.lower() not in allowed:
                errors.append(f"{path}: '{value}' is not one of {sorted(allowed)}")
            return
        model(value, cls, path, errors)


def model(doc, cls, path, errors):
    if not isinstance(doc, dict):
        return errors.append(f"{path}: expected an object for {cls.__name__}")
    attrs = {v["key"]: (name, v["type"]) for name, v in cls._attribute_map.items()}
    for key, value in doc.items():
        if key not in attrs:
            errors.append(f"{path}.{key}: unknown key for {cls.__name__}")
            continue
        name, typ = attrs[key]
        if cls._validation.get(name, {}).get("readonly"):
            errors.append(f"{path}.{key}: read-only")
        check(value, typ, f"{path}.{key}", errors)
    for name, rule in cls._validation.items():
        if rule.get("required") and cls._attribute_map[name]["key"] not in doc:
            errors.append(f"{path}: missing required '{cls._attribute_map[name]['key']}' of {cls.__name__}")


def rules(pool, job, tasks, errors):
    """Cross-field rules from Azure Batch's guidance (the same ones terrafarm's advisor applies)."""
    slots = pool.get("taskSlotsPerNode", 1)
    vm = pool.get("virtualMachineConfiguration", {})
    if job.get("poolInfo", {}).get("poolId") != pool.get("id"):
        errors.append("job.poolInfo.poolId does not name the pool")
    if "licenseType" in vm and "windows" not in vm.get("nodeAgentSKUId", ""):
        errors.append("pool: licenseType (Hybrid Benefit) on a non-Windows image")
    for t in tasks:
        mi = t.get("multiInstanceSettings")
        if mi is not None:
            if slots != 1:
                errors.append(f"task {t.get('id')}: multi-instance task on a pool with taskSlotsPerNode {slots} is never scheduled")
            if not pool.get("enableInterNodeCommunication"):
                errors.append(f"task {t.get('id')}: multi-instance task needs enableInterNodeCommunication")
            if pool.get("targetLowPriorityNodes", 0) > 0 or pool.get("enableAutoScale"):
                errors.append(f"task {t.get('id')}: multi-instance task on Spot/autoscaled nodes")
            if mi.get("numberOfInstances", 1) > pool.get("targetDedicatedNodes", 0):
                errors.append(f"task {t.get('id')}: numberOfInstances exceeds the pool's dedicated nodes")
        if t.get("requiredSlots", 1) > slots:
            errors.append(f"task {t.get('id')}: requiredSlots exceeds taskSlotsPerNode")
    if slots > 256:
        errors.append("pool: taskSlotsPerNode above 256")
    # Task dependencies: only with usesTaskDependencies on the job, and only on tasks of this job, declared before.
    ids = [t.get("id") for t in tasks]
    for i, t in enumerate(tasks):
        deps = t.get("dependsOn", {}).get("taskIds", [])
        if deps and not job.get("usesTaskDependencies"):
            errors.append(f"task {t.get('id')}: dependsOn without usesTaskDependencies on the job (Batch rejects the task)")
        for d in deps:
            if d not in ids[:i]:
                errors.append(f"task {t.get('id')}: depends on '{d}', which is not an earlier task of this job")
    # GPU render tasks need GPU nodes (Azure's N-series: NC, ND, NV, NG).
    gpu = re.match(r"(?i)^(standard_)?n[cdvg]", pool.get("vmSize", ""))
    for t in tasks:
        if re.search(r'terrafarm"? render ', t.get("commandLine", "")) and not gpu:
            errors.append(f"task {t.get('id')}: a render task on {pool.get('vmSize')}, which has no GPU")
    # Secrets never belong in generated documents (a SAS is added at submit time, in a temporary copy).
    inline = re.compile(r"(sig=|AccountKey=|SharedAccessSignature=)", re.I)
    secret_setting = re.compile(r"(SAS_TOKEN|ACCOUNT_KEY|ACCESS_KEY|CONNECTION_STRING|CLIENT_SECRET)$", re.I)
    for where, doc in (("pool", pool), ("job", job), ("tasks", tasks)):
        m = inline.search(json.dumps(doc))
        if m:
            errors.append(f"{where}: contains a credential ({m.group(0)}...)")
    settings = list(job.get("commonEnvironmentSettings", [])) + [e for t in tasks for e in t.get("environmentSettings", [])]
    settings += pool.get("startTask", {}).get("environmentSettings", [])
    for e in settings:
        if secret_setting.search(e.get("name", "")):
            errors.append(f"environment setting {e.get('name')}: a credential must not be written into a document")


def validate(pool, job, tasks):
    errors = []
    model(pool, M.PoolAddParameter, "pool", errors)
    model(job, M.JobAddParameter, "job", errors)
    if not isinstance(tasks, list) or not tasks:
        errors.append("tasks: expected a non-empty array")
    else:
        for i, t in enumerate(tasks):
            model(t, M.TaskAddParameter, f"tasks[{i}]", errors)
        if not errors:  # the cross-field rules assume well-typed documents
            rules(pool, job, tasks, errors)
    return errors


def load(d):
    return [json.load(open(os.path.join(d, f))) for f in ("pool.json", "job.json", "tasks.json")]


def self_test(d):
    """Each broken copy must be rejected: proves the validator bites."""
    pool, job, tasks = load(d)
    breaks = {
        "misspelled key": lambda p, j, t: p.__setitem__("vmSzie", p.pop("vmSize")),
        "wrong type": lambda p, j, t: p.__setitem__("taskSlotsPerNode", "4"),
        "missing required": lambda p, j, t: j.pop("poolInfo"),
        "bad enum": lambda p, j, t: j.__setitem__("onAllTasksComplete", "explode"),
        "nested unknown key": lambda p, j, t: p["startTask"].__setitem__("commandline", "x"),
        "bool as string": lambda p, j, t: p.__setitem__("enableInterNodeCommunication", "true"),
        "slots rule": lambda p, j, t: p.__setitem__("taskSlotsPerNode", 300),
        "secret in document": lambda p, j, t: j.setdefault("commonEnvironmentSettings", []).append({"name": "AZURE_STORAGE_SAS_TOKEN", "value": "sv=1&sig=x"}),
        "dangling dependency": lambda p, j, t: t[0].__setitem__("dependsOn", {"taskIds": ["no-such-task"]}),
        "render on CPU nodes": lambda p, j, t: (p.__setitem__("vmSize", "Standard_D16as_v5"),
                                                t.append({"id": "render-x", "commandLine": "/bin/bash -c '\"$AZ_BATCH_NODE_SHARED_DIR/terrafarm\" render \"out/x\"'"})),
    }
    failed = 0
    for name, brk in breaks.items():
        p, j, t = copy.deepcopy(pool), copy.deepcopy(job), copy.deepcopy(tasks)
        brk(p, j, t)
        if not validate(p, j, t):
            print(f"self-test: '{name}' was NOT rejected", file=sys.stderr)
            failed += 1
    return failed


def main(argv):
    selftest = "--self-test" in argv
    dirs = [a for a in argv if a != "--self-test"]
    bad = 0
    for d in dirs:
        errs = validate(*load(d))
        for e in errs:
            print(f"{d}: {e}", file=sys.stderr)
        bad += bool(errs)
        if selftest:
            bad += self_test(d)
    print(f"batch documents: {len(dirs)} checked, {bad} problem(s)")
    return 1 if bad or not dirs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

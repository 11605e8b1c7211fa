"""Every bad-input case of issue 17 through the real CLI, printed as a markdown matrix
(case | exit | message | data lost? | verdict).

Needs root on Linux: it mounts a 1 MB tmpfs (a really full disk, a mount point) and a read-only
bind mount, and unmounts both at the end. The unit tests (`tests/test_bad_input.py`) cover the
same cases with a fake file-system layer; this script checks them against the real kernel.

    sudo python benchmarks/bad_input_matrix.py [--work /tmp/nh-matrix]
"""
import argparse, atexit, hashlib, os, pickle, shutil, subprocess, sys, json
from pathlib import Path
import torch
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--work", default="/tmp/nh-matrix", help="scratch folder (emptied)")
WORK = Path(ap.parse_args().work)
shutil.rmtree(WORK, ignore_errors=True)
W = WORK / "w"; W.mkdir(parents=True)
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PY = sys.executable
TINY = ["--preset", "digits", "--train-subset", "100", "--test-subset", "40", "--set", "readout.epochs=1", "--no-progress"]
def nh(*args, cwd=W):
    r = subprocess.run([PY, "-m", "neurohebb", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    return r
def digest(*paths):
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else ([p] if p.exists() else [])
        for f in files:
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode()); h.update(f.read_bytes())
    return h.hexdigest()
def leftovers(*dirs):
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_dir():
            out += [x.name for x in d.iterdir() if ".staging-" in x.name or ".old-" in x.name or ".tmp-" in x.name]
    return out
rows = []
def case(name, args, keep=(), cwd=W, expect=2, scan=(W,)):
    before = digest(*keep) if keep else None
    r = nh(*args, cwd=cwd)
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    msg = lines[-1] if lines else "(none)"
    one = len(lines) == 1 and lines[0].startswith("neurohebb: error: ")
    lost = "no" if (not keep or digest(*keep) == before) else "YES"
    left = leftovers(*scan)
    ok = r.returncode == expect and (one or expect == 0) and lost == "no" and not left and "Traceback" not in r.stderr and "weights_only=False" not in r.stderr
    rows.append((name, r.returncode, msg.replace("neurohebb: error: ", "") if expect else "(ok) " + r.stdout.strip().splitlines()[-1], lost + (f", leftovers {left}" if left else ""), "ok" if ok else "FAIL"))
    print(rows[-1], flush=True)
    return r
# a trained run to damage
assert nh("train", *TINY, "--out", "run").returncode == 0
RUN = W / "run"
MT, RO, RO_SRC = WORK / "mt", WORK / "ro", WORK / "ro-src"
MT.mkdir(); RO.mkdir(); shutil.copytree(RUN, RO_SRC)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(MT)], check=True)
atexit.register(lambda: subprocess.run(["umount", str(MT)]))
subprocess.run(["mount", "--bind", str(RO_SRC), str(RO)], check=True)
atexit.register(lambda: subprocess.run(["umount", str(RO)]))
subprocess.run(["mount", "-o", "remount,ro,bind", str(RO)], check=True)
def copy(name):
    d = W / name; shutil.copytree(RUN, d); return d
# 1 overwrite
(W/"X/run_a").mkdir(parents=True); shutil.copytree(RUN, W/"X/run_b")
case("1 --overwrite on a folder of runs (X/run_a, X/run_b)", ["train", *TINY, "--out", "X", "--overwrite"], keep=[W/"X"])
(W/"data").mkdir(); (W/"data"/"train-images-idx3-ubyte").write_bytes(b"\0"*100)
case("1 --overwrite on a dataset folder", ["train", *TINY, "--out", "data", "--overwrite"], keep=[W/"data"])
copy("old"); case("1 --overwrite on a neurohebb run (replaced)", ["train", *TINY, "--out", "old", "--overwrite"], expect=0)
# 4 write failures. real tmpfs (1 MB) filled, real read-only bind mount
shutil.copytree(RUN, MT / "prev"); free = shutil.disk_usage(MT).free; (MT / "filler").write_bytes(b"\0" * max(free - 120_000, 0))
case("4 full disk (tmpfs) at --out", ["train", *TINY, "--out", str(MT / "new")], scan=(MT,))
case("4 full disk during --overwrite of a run", ["train", *TINY, "--out", str(MT / "prev"), "--overwrite"], keep=[MT / "prev"], scan=(MT,))
(MT / "filler").unlink()
case("4 --out on a mount point (tmpfs, EBUSY)", ["train", *TINY, "--out", str(MT), "--overwrite"], keep=[MT], scan=(MT, WORK))
d = copy("D"); case("4 (cd D; train --out . --overwrite)", ["train", *TINY, "--out", ".", "--overwrite"], keep=[d], cwd=d)
(W/"afile").write_text("mine"); case("4 --out naming a file", ["train", *TINY, "--out", "afile", "--overwrite"], keep=[W/"afile"])
case("4 eval on a read-only run directory (ro bind mount)", ["eval", str(RO)], keep=[RO])
case("4 feasibility --json on a read-only path", ["feasibility", "--preset", "digits", "--chip", "loihi2", "--activity", "0.1", "--json", str(RO / "f.json")], keep=[RO])
case("4 train --out on a read-only file system", ["train", *TINY, "--out", str(RO / "new")], keep=[RO])
shutil.copytree(RUN, MT / "sw0")
free = shutil.disk_usage(MT).free; (MT / "filler").write_bytes(b"\0" * max(free - 40_000, 0))
case("4 full disk during a sweep", ["sweep", *TINY, "--weight-bits", "8", "--rounding", "nearest", "--no-ptq", "--out", str(MT / "sweep")], scan=(MT, MT / "sweep", MT / "sweep" / "points"))
(MT / "filler").unlink(); shutil.rmtree(MT / "sweep", ignore_errors=True)
host = os.uname().nodename
st = W / f".stale.staging-999999@{host}-0123abcd"; st.mkdir(); (st / "x").write_text("x")
r = case("4 stale staging of a killed run, next run into same parent", ["train", *TINY, "--out", "after-stale"], expect=0)
rows[-1] = rows[-1][:3] + (("no; stale folder removed" if not st.exists() else "stale folder LEFT"),) + rows[-1][4:]
# 9 umask
r = subprocess.run(["bash", "-c", f"umask 022; {PY} -m neurohebb train {' '.join(TINY)} --out umask-run >/dev/null && stat -c '%a' umask-run umask-run/metrics.json | tr '\\n' ' '"], cwd=W, env=ENV, capture_output=True, text=True)
rows.append(("9 umask 022: run dir / file modes", 0, r.stdout.strip(), "no", "ok" if r.stdout.split() == ["755", "644"] else "FAIL")); print(rows[-1])
# 2 3 6 validation
for o in ["layers.100000000.lr=0.05", "layers.1.out_channels=100000000", "readout.lr_gamma=-1", "readout.lr_milestones=[5,-1]", "layers=[]", "layers.0.t_invert=inf", "layers.0.activation_param=-1"]:
    case(f"2/6 --set {o}", ["train", *TINY, "--set", o, "--out", "v"])
case("3 --precision weight=um8", ["train", *TINY, "--precision", "weight=um8", "--out", "v"])
case("6 --precision ''", ["train", *TINY, "--precision", "", "--out", "v"])
case("7 --seed 99999999999999999999", ["train", *TINY, "--seed", "99999999999999999999", "--out", "v"])
# 5 eval vs config.toml
d = copy("ed_data"); t = (d/"config.toml").read_text(); (d/"config.toml").write_text(t.replace('dataset = "digits"', 'dataset = "mnist"'))
case("5 eval, dataset edited in config.toml", ["eval", str(d)], keep=[d])
d = copy("ed_net"); t = (d/"config.toml").read_text(); (d/"config.toml").write_text(t.replace("out_channels = 32", "out_channels = 64", 1))
case("5 eval, network edited in config.toml", ["eval", str(d)], keep=[d])
# 7 TOML
bad = W/"bad.toml"; bad.write_bytes(b"seed = 1\n# caf\xe9\n")
case("7 non-UTF-8 --config", ["train", "--preset", "digits", "--config", str(bad)])
case("7 non-UTF-8 --precision FILE.toml", ["train", "--preset", "digits", "--precision", str(bad)])
case("7 non-UTF-8 --chip-file", ["feasibility", "--preset", "digits", "--chip-file", str(bad)])
d = copy("ed_toml"); (d/"config.toml").write_bytes(b"seed = 0\n\xff\xfe\n")
case("7 non-UTF-8 run config.toml (eval)", ["eval", str(d)], keep=[d])
# 7 checkpoints
ck = torch.load(RUN/"checkpoint.pt", weights_only=True)
def damaged(name, change):
    d = copy(name); p = {**ck, "state_dict": dict(ck["state_dict"]), "config": dict(ck["config"])}; change(p); torch.save(p, d/"checkpoint.pt"); return d
d = damaged("ck_noconfig", lambda p: p.pop("config")); case("7 checkpoint without config (eval)", ["eval", str(d)], keep=[d])
d = damaged("ck_abc", lambda p: p.update(num_classes="abc")); case("7 checkpoint num_classes='abc' (eval)", ["eval", str(d)], keep=[d])
case("7 checkpoint num_classes='abc' (feasibility --checkpoint)", ["feasibility", "--checkpoint", str(d), "--chip", "loihi2"], keep=[d])
d = damaged("ck_list", lambda p: p.update(state_dict=[1, 2])); case("7 checkpoint state_dict is a list (eval)", ["eval", str(d)], keep=[d])
case("7 checkpoint state_dict is a list (feasibility --checkpoint)", ["feasibility", "--checkpoint", str(d), "--chip", "loihi2"], keep=[d])
d = damaged("ck_shape", lambda p: p["state_dict"].update({"blocks.0.layer.weight": torch.zeros(3, 1, 3, 3)})); case("8 checkpoint tensor of wrong shape (names it)", ["eval", str(d)], keep=[d])
class Evil:
    def __reduce__(self): return (os.system, (f"touch {W}/PWNED",))
d = copy("ck_evil"); (d/"checkpoint.pt").write_bytes(pickle.dumps({"format": "neurohebb-checkpoint-v1", "x": Evil()}))
case("7 malicious checkpoint (os.system pickle)", ["eval", str(d)], keep=[d])
s = W/"stpn_foreign"; s.mkdir(); torch.save({"w": torch.zeros(2)}, s/"model.pt"); case("7 stpn eval on a foreign .pt", ["stpn", "eval", str(s)], keep=[s])
s = W/"stpn_evil"; s.mkdir(); (s/"model.pt").write_bytes(pickle.dumps(Evil())); case("7 stpn eval on a malicious .pt", ["stpn", "eval", str(s)], keep=[s])
rows.append(("7 malicious pickles ran no code", "-", "PWNED absent" if not (W/"PWNED").exists() else "PWNED EXISTS", "no", "ok" if not (W/"PWNED").exists() else "FAIL"))
# sweep point files: missing / string accuracy are rerun, never summarised
sw = W / "sweep"
assert nh("sweep", *TINY, "--weight-bits", "8", "--rounding", "nearest", "--no-ptq", "--out", str(sw)).returncode == 0
pts = sorted((sw / "points").glob("*.json"))
rec = json.loads(pts[0].read_text()); rec["test_accuracy"] = "91"; pts[0].write_text(json.dumps(rec))
rec = json.loads(pts[1].read_text()); rec.pop("test_accuracy"); pts[1].write_text(json.dumps(rec))
r = case("7 sweep point files with string / missing accuracy (resume)", ["sweep", *TINY, "--weight-bits", "8", "--rounding", "nearest", "--no-ptq", "--out", str(sw)], expect=0, scan=(sw, sw / "points"))
ok = all(isinstance(json.loads(p.read_text())["test_accuracy"], float) for p in pts)
rows[-1] = rows[-1][:2] + (("both points rerun: " + r.stdout.strip().splitlines()[0]) if ok else "NOT RERUN",) + rows[-1][3:4] + (("ok" if ok and rows[-1][4] == "ok" else "FAIL"),)
# 10 deploy flags
case("10 lava-learn --t-epoch 64", ["deploy", "lava-learn", str(RUN), "--t-epoch", "64"], keep=[RUN])
print("\n| case | exit | message | data lost? | verdict |\n|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")

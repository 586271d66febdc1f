#!/usr/bin/env bash
# gpu-campaign.sh: the first real-GPU campaign of memval (see scripts/README.md
# and shared CAMPAIGNS.md). One prepared run that turns a few minutes on a GPU
# into files to commit raw under scenarios/results/<gpu>/<date>/.
#
#   scripts/gpu-campaign.sh OUTDIR [GRID...]
#
# Stages, each timed, each one's failure recorded and passed over:
#   env      OUTDIR/env/: date, host, nvidia-smi, memval devices, python/torch
#   idle     memval profile of `sleep 2`: the idle device
#   context  memval profile of a bare CUDA context (torch.cuda.init + 1 tensor)
#   sweep    memval sweep GRID into OUTDIR/sweep/<grid>/ for each GRID
#            (default: scenarios/grids/campaign-h100.yaml); misses, OOMs and
#            failed runs are results
#   fit      memval fit OUTDIR/sweep --out OUTDIR/fit
#   pack     OUTDIR.tar.gz beside OUTDIR, then the summary table
#
# Environment:
#   MEMVAL          the memval binary (default: bin/memval of this repository)
#   MEMVAL_PYTHON   Python with a CUDA build of torch 2.x (default: python3)
#   DEVICE          nvml (default) on a GPU host; sim for a rehearsal
#   SWEEP_TIMEOUT_S seconds all sweeps together may take before they are
#                   interrupted (SIGTERM: the running scenario is recorded as
#                   interrupted), so that fit and pack still run (default 270)
#
# Expected wall time on one H100: about 4 minutes (env 5-10 s, idle 3 s,
# context 5-10 s, sweep of 20 runs at 5-12 s each, fit a few seconds, pack
# 1-2 s). On --device sim, with no torch: under 20 s. A rerun with the same
# OUTDIR resumes the sweep (scenarios with a verdict are skipped).
set -euo pipefail

usage() {
	echo "usage: scripts/gpu-campaign.sh OUTDIR [GRID...]" >&2
	echo "  env: MEMVAL (bin/memval), MEMVAL_PYTHON (python3), DEVICE (nvml; sim to rehearse), SWEEP_TIMEOUT_S (270)" >&2
	exit 2
}
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEMVAL=${MEMVAL:-$ROOT/bin/memval}
MEMVAL_PYTHON=${MEMVAL_PYTHON:-python3}
DEVICE=${DEVICE:-nvml}
SWEEP_TIMEOUT_S=${SWEEP_TIMEOUT_S:-270}
export MEMVAL_PYTHON

OUTDIR=${1%/}
shift
GRIDS=("$@")
if [ ${#GRIDS[@]} -eq 0 ]; then
	GRIDS=("$ROOT/scenarios/grids/campaign-h100.yaml")
fi

if [ ! -x "$MEMVAL" ]; then
	echo "gpu-campaign: memval binary $MEMVAL is missing or not executable; run 'make build' (or set MEMVAL)" >&2
	exit 2
fi
for g in "${GRIDS[@]}"; do
	if [ ! -f "$g" ]; then
		echo "gpu-campaign: grid $g not found" >&2
		exit 2
	fi
done

mkdir -p "$OUTDIR/env" "$OUTDIR/logs"
STAGES="$OUTDIR/stages.tsv"
[ -f "$STAGES" ] || printf 'stage\texit\tseconds\tstarted\n' >"$STAGES"

now() { # seconds since the epoch, with fractions where bash has them
	if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s; fi
}
T0=$(now)
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# stage NAME CMD...: runs CMD with its output on the terminal and in
# OUTDIR/logs/NAME.log, records its exit code and time in stages.tsv, and
# never stops the campaign.
stage() {
	local name=$1 start rc secs
	shift
	start=$(now)
	echo "== $name: $*"
	set +e
	"$@" 2>&1 | tee -a "$OUTDIR/logs/$name.log"
	rc=${PIPESTATUS[0]}
	set -e
	secs=$(elapsed "$start")
	printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$(date -u +%FT%TZ)" >>"$STAGES"
	echo "== $name: exit $rc, ${secs} s (campaign $(elapsed "$T0") s)"
	return 0
}

# try FILE CMD...: CMD's output into FILE, its failure noted in the file.
try() {
	local file=$1 rc
	shift
	set +e
	"$@" >"$file" 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 0 ] || echo "gpu-campaign: '$*' failed with exit $rc" >>"$file"
	return 0
}

env_record() {
	local e="$OUTDIR/env"
	{
		echo "date_utc: $(date -u +%FT%TZ)"
		echo "date_local: $(date)"
		echo "host: $(hostname 2>/dev/null || uname -n)"
		echo "kernel: $(uname -srm)"
		echo "device: $DEVICE"
		echo "memval: $MEMVAL"
		echo "memval_python: $MEMVAL_PYTHON"
		echo "grids: ${GRIDS[*]}"
		echo "sweep_timeout_s: $SWEEP_TIMEOUT_S"
	} >"$e/campaign.txt"
	try "$e/memval-version.txt" "$MEMVAL" --version
	if command -v git >/dev/null 2>&1 && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
		{ git -C "$ROOT" rev-parse HEAD && git -C "$ROOT" status --short; } >"$e/git.txt" 2>&1 || true
	else
		echo "no git checkout here (the memval version is in memval-version.txt)" >"$e/git.txt"
	fi
	if command -v nvidia-smi >/dev/null 2>&1; then
		try "$e/nvidia-smi.txt" nvidia-smi
		try "$e/nvidia-smi-query.csv" nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
		try "$e/nvidia-smi-q.txt" nvidia-smi -q
	else
		echo "nvidia-smi not found on PATH: no NVIDIA driver tools on this host (device $DEVICE)" >"$e/nvidia-smi.txt"
	fi
	try "$e/devices.json" "$MEMVAL" devices --device "$DEVICE" --json
	try "$e/devices.txt" "$MEMVAL" devices --device "$DEVICE"
	try "$e/python.txt" "$MEMVAL_PYTHON" -c '
import json, platform, sys
info = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform()}
try:
    import torch
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name()
        info["capability"] = list(torch.cuda.get_device_capability())
    info["sdpa"] = hasattr(torch.nn.functional, "scaled_dot_product_attention")
except Exception as e:
    info["torch_error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(info, indent=2))
'
	cat "$e/campaign.txt" "$e/nvidia-smi-query.csv" "$e/devices.txt" "$e/python.txt" 2>/dev/null || true
}

# The bare CUDA context: what torch.cuda.init() and one tiny tensor take. It
# prints torch's view and writes it to the events file as an info event.
CONTEXT_PY='
import json, os, sys, time
import torch
torch.cuda.init()
x = torch.ones(1, device="cuda")
torch.cuda.synchronize()
info = {"torch": torch.__version__, "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(),
        "memory_allocated": torch.cuda.memory_allocated(),
        "memory_reserved": torch.cuda.memory_reserved()}
free, total = torch.cuda.mem_get_info()
info["mem_get_info_free"], info["mem_get_info_total"] = free, total
print(json.dumps(info))
path = os.environ.get("MEMVAL_EVENTS")
if path:
    with open(path, "a") as f:
        f.write(json.dumps({"v": 1, "t": time.monotonic_ns(), "kind": "info", "data": dict(info, context=True)}) + "\n")
sys.stdout.flush()
time.sleep(1)
'

sweep_all() {
	local deadline g name rc=0 left
	deadline=$(awk -v t="$(now)" -v s="$SWEEP_TIMEOUT_S" 'BEGIN { printf "%d", t + s }')
	for g in "${GRIDS[@]}"; do
		name=$(basename "$g" .yaml)
		left=$(awk -v d="$deadline" -v t="$(now)" 'BEGIN { printf "%d", d - t }')
		if [ "$left" -le 5 ]; then
			echo "gpu-campaign: no time left for grid $g (SWEEP_TIMEOUT_S=$SWEEP_TIMEOUT_S); not run"
			rc=124
			continue
		fi
		echo "-- sweep $g into $OUTDIR/sweep/$name (at most ${left} s)"
		set +e
		timeout -s TERM -k 20 "$left" "$MEMVAL" sweep "$g" --device "$DEVICE" --out "$OUTDIR/sweep/$name" \
			>"$OUTDIR/logs/table-$name.txt"
		local r=$?
		set -e
		cat "$OUTDIR/logs/table-$name.txt"
		echo "-- sweep $g: exit $r"
		[ "$r" -eq 0 ] || rc=$r
	done
	return "$rc"
}

# summary: scenario, status, measured peak and the breakdown formula's error,
# cut by column from each sweep's own table (tabwriter columns).
summary() {
	local g name t
	printf '%-46s %-14s %-12s %s\n' scenario status peak breakdown
	for g in "${GRIDS[@]}"; do
		name=$(basename "$g" .yaml)
		t="$OUTDIR/logs/table-$name.txt"
		if [ ! -s "$t" ]; then
			echo "($name: no sweep table; see $OUTDIR/logs/sweep.log)"
			continue
		fi
		awk '
			function cell(k,   s) {
				s = (k < n) ? substr($0, start[k], start[k + 1] - start[k]) : substr($0, start[k])
				gsub(/^ +| +$/, "", s)
				return s == "" ? "-" : s
			}
			/^scenario +status +peak/ {
				n = 0
				for (i = 1; i <= length($0); i++)
					if (substr($0, i, 1) != " " && (i == 1 || substr($0, i - 1, 1) == " ")) {
						start[++n] = i
						w = substr($0, i); sub(/ .*/, "", w); col[w] = n
					}
				intable = 1
				next
			}
			intable && /scenario\(s\):/ { print "  " $0; intable = 0; next }
			intable && NF > 0 {
				printf "%-46s %-14s %-12s %s\n", cell(col["scenario"]), cell(col["status"]), cell(col["peak"]), ("breakdown" in col) ? cell(col["breakdown"]) : "-"
			}
		' "$t"
	done
}

pack() {
	local parent base
	parent=$(dirname "$OUTDIR")
	base=$(basename "$OUTDIR")
	tar -czf "$OUTDIR.tar.gz" -C "$parent" "$base"
	echo "packed $OUTDIR.tar.gz ($(du -h "$OUTDIR.tar.gz" | cut -f1)), $(tar -tzf "$OUTDIR.tar.gz" | wc -l) entries:"
	tar -tzf "$OUTDIR.tar.gz" | awk -F/ 'NF <= 3 || /\/$/' | sed 's/^/  /'
}

echo "gpu-campaign: device $DEVICE, memval $MEMVAL, python $MEMVAL_PYTHON, out $OUTDIR"
stage env env_record
stage idle "$MEMVAL" profile --device "$DEVICE" --out "$OUTDIR/idle" -- sleep 2
stage context "$MEMVAL" profile --device "$DEVICE" --out "$OUTDIR/context" -- "$MEMVAL_PYTHON" -c "$CONTEXT_PY"
stage sweep sweep_all
stage fit "$MEMVAL" fit "$OUTDIR/sweep" --out "$OUTDIR/fit"
printf 'total\t-\t%s\t%s\n' "$(elapsed "$T0")" "$(date -u +%FT%TZ)" >>"$STAGES"
echo "== stages (exit code, seconds):"
column -t -s "$(printf '\t')" "$STAGES" 2>/dev/null || cat "$STAGES"
summary >"$OUTDIR/summary.txt" 2>&1 || true
stage pack pack
echo "== summary (scenario, status, measured peak, breakdown's error; $OUTDIR/summary.txt; campaign $(elapsed "$T0") s)"
cat "$OUTDIR/summary.txt"

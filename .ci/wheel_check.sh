#!/usr/bin/env bash
# The wheel on its own: build it, install it into a clean venv with no clone beside it, and run a user's first
# commands there with the bundled model (predict, personalize, plan); `report` must say in one line where the
# notebooks are. Usage: .ci/wheel_check.sh [TORCH_SPEC]   (default torch==2.13.0, the CPU build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TORCH=${1:-torch==2.13.0}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$ROOT/build"' EXIT  # setuptools leaves build/ in the tree
python3 -m pip wheel --quiet --no-deps -w "$WORK/dist" . >/dev/null
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$TORCH" "$WORK"/dist/hr_lstm-*.whl 2>&1 | grep -v "^WARNING: Location" || true
mkdir "$WORK/user" && cd "$WORK/user"   # no clone here: only the user's own files
cp -r "$ROOT/examples/runner_a" runs
cp "$ROOT/examples/routes/hill_run_5k.gpx" route.gpx
HR="$WORK/venv/bin/hr-lstm"
"$HR" predict runs/0c97d8a7-8081-4609-b92c-5932468d7b8e.gpx.gz --out predictions | tee predict.log
grep -q "the bundled default model" predict.log
"$HR" personalize --workouts runs --out me.pt | tail -2
"$HR" predict --checkpoint me.pt runs/fc749c36-d90a-48ab-9307-e7f65cb2afe2.gpx.gz --warm-start-min 5 --out mine | tail -1
"$HR" plan route.gpx --checkpoint me.pt --pace 6:00/km --out plans | tail -1
# Without the clone's notebooks (and without the notebooks extra) `report` says so in one line.
if "$HR" report --out reports 2> report.err; then echo "report ran without notebooks?"; exit 1; fi
cat report.err
[ "$(wc -l < report.err)" -eq 1 ] && grep -q "the notebooks ship with the source" report.err
echo "wheel check: passed (predict, personalize, plan with the bundled model; report says where the notebooks are)"

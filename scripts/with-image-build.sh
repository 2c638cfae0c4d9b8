#!/usr/bin/env bash
# Run COMMAND (make test: pytest) while `make image` builds the node image in the background,
# so that a cold build (a minute or more of both cores on a fresh machine) overlaps the tests
# that need no image:
#
#   scripts/with-image-build.sh COMMAND [ARG ...]       (MAKE: the make to call, default make)
#
# - The build runs as `make image` in its own session and process group (setsid), its pid in
#   build/image-build.pid and its output in build/image-build.log (kept).
# - `make image` holds a lock (flock on build/image.lock) for the whole build, so the tests' own
#   `make image` (tests/containers, which pytest runs last) waits for this one and then finds
#   every layer in the engine's cache.
# - When COMMAND ends, a build still running (COMMAND ended before needing the image: a failure,
#   -k, -x) is waited for, up to BUILD_WAIT_S seconds (default 1800): a build that is killed
#   leaves its intermediate containers in the engine's storage (podman 4.3 removes them only at
#   the end of a build; found by trying), and a finished one warms the cache for the next run.
#   A build that failed has its log printed. The exit status is COMMAND's.
# - Interrupted (Ctrl-C, TERM), or past BUILD_WAIT_S, the build is stopped with its whole process
#   group (TERM, then KILL after STOP_WAIT_S seconds, default 60).
set -uo pipefail

make_cmd="${MAKE:-make}"
folder=build
pidfile="$folder/image-build.pid"
log="$folder/image-build.log"
build_wait_s="${BUILD_WAIT_S:-1800}"
stop_wait_s="${STOP_WAIT_S:-60}"

[ $# -gt 0 ] || { echo "usage: scripts/with-image-build.sh COMMAND [ARG ...]" >&2; exit 2; }
mkdir -p "$folder"

# Not a process group leader (no job control here), so setsid runs make itself: the pid is the
# process group id of the whole build.
setsid "$make_cmd" --no-print-directory image </dev/null >"$log" 2>&1 &
build_pid=$!
echo "$build_pid" >"$pidfile"
echo "with-image-build: make image runs in the background (pid $build_pid, log $log)"

# Whether any process of the build's process group is still alive (zombies aside).
running() {
  local pids
  pids="$(pgrep -g "$build_pid" | paste -sd, -)"
  [ -n "$pids" ] && ps -o stat= -p "$pids" | grep -qv '^Z'
}

# Wait up to $1 seconds for the build to end; true when it did.
ended_within() {
  local ticks=$(($1 * 10))
  while running && [ "$ticks" -gt 0 ]; do sleep 0.1; ticks=$((ticks - 1)); done
  ! running
}

stop_build() {
  echo "with-image-build: stopping the image build ($1; process group $build_pid); the engine" \
       "may keep its intermediate containers: podman ps -a --external"
  kill -TERM -- "-$build_pid" 2>/dev/null
  ended_within "$stop_wait_s" || kill -KILL -- "-$build_pid" 2>/dev/null
}

# finish [interrupted]: end the build as the header says, print its log if it failed.
finish() {
  trap - EXIT INT TERM
  local stopped=0
  if [ "${1:-}" = interrupted ] && running; then
    stop_build "interrupted"
    stopped=1
  elif running; then
    echo "with-image-build: waiting for the background image build to finish (log $log)"
    if ! ended_within "$build_wait_s"; then
      stop_build "not finished after ${build_wait_s} s"
      stopped=1
    fi
  fi
  wait "$build_pid"
  local build_status=$?
  rm -f "$pidfile"
  if [ "$stopped" = 0 ] && [ "$build_status" != 0 ]; then
    echo "with-image-build: the background make image failed (exit $build_status); $log:"
    cat "$log"
  fi
}

trap 'finish interrupted; exit 130' INT TERM
trap 'finish interrupted' EXIT
"$@"
status=$?
finish
exit "$status"

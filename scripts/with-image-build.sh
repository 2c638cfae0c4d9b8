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
# - When COMMAND ends: a build that is still running (COMMAND ended before needing the image:
#   a failure, -k, -x, Ctrl-C) is stopped with its whole process group (TERM, KILL after
#   STOP_WAIT_S); a build that failed has its log printed. The exit status is COMMAND's.
set -uo pipefail

make_cmd="${MAKE:-make}"
folder=build
pidfile="$folder/image-build.pid"
log="$folder/image-build.log"
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

finish() {
  trap - EXIT INT TERM
  local stopped=0
  if running; then
    stopped=1
    echo "with-image-build: stopping the unfinished image build (process group $build_pid)"
    kill -TERM -- "-$build_pid" 2>/dev/null
    for _ in $(seq $((stop_wait_s * 10))); do running || break; sleep 0.1; done
    running && kill -KILL -- "-$build_pid" 2>/dev/null
  fi
  wait "$build_pid"
  local build_status=$?
  rm -f "$pidfile"
  if [ "$stopped" = 0 ] && [ "$build_status" != 0 ]; then
    echo "with-image-build: the background make image failed (exit $build_status); $log:"
    cat "$log"
  fi
}

trap 'finish; exit 130' INT TERM
trap finish EXIT
"$@"
status=$?
finish
exit "$status"

# shellcheck shell=bash
# Sourced by scripts/cluster.sh and scripts/addons.sh: the background supervisors they start (a shell loop that
# restarts one binary), each known by a pid file.

# running PIDFILE: the supervisor of PIDFILE is alive.
running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_supervised PIDFILE: the supervisor's process group (it and the binary it runs) stopped, TERM first, KILL
# after 5 s; the pid file removed.
stop_supervised() {
	running "$1" || { rm -f "$1"; return 0; }
	local pid
	pid=$(cat "$1")
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$1"
}

#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests/sweep/test_slurm.py (sweeps through launcher=slurm and a
# requeued job that resumes from its checkpoint). Debian/Ubuntu, as root. Idempotent: run it again and it only
# starts what is not running.
#
#   bash scripts/slurm_single_node.sh          # install (if missing), configure, start, wait until the node is idle
#   bash scripts/slurm_single_node.sh stop     # stop the daemons this script started
#
# The settings that start here (no systemd, no cgroups, no slurmdbd): SlurmUser=root, proctrack/linuxproc,
# task/none, no accounting, munged started first. Everything it writes lives in $STATE_DIR and in
# /etc/slurm/slurm.conf, which it refuses to overwrite unless this script wrote it.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # the daemons live in sbin, which a non-login shell may lack

STATE_DIR=${SCALING_LAB_SLURM_DIR:-/var/spool/scaling_lab_slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by scaling_lab scripts/slurm_single_node.sh"
WAIT_S=${SCALING_LAB_SLURM_WAIT_S:-60}

die() { echo "slurm_single_node.sh: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() {  # SIGTERM, then wait up to 10 s for it to exit (a restarted daemon needs its port back)
  alive "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  die "pid $pid (from $1) did not exit within 10 s of SIGTERM"
}

stop() {
  # Only daemons whose pid files this script owns; munged only if this script started it.
  stop_daemon "$STATE_DIR/slurmd.pid"
  stop_daemon "$STATE_DIR/slurmctld.pid"
  if [[ -e $STATE_DIR/munged.started-here ]]; then
    stop_daemon /run/munge/munged.pid
    rm -f "$STATE_DIR/munged.started-here"
  fi
  echo "slurm_single_node.sh: stopped"
}

install_packages() {
  local missing=()
  for binary in slurmctld slurmd munged sinfo; do command -v "$binary" >/dev/null || missing+=("$binary"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install slurmctld, slurmd, munge and slurm-client by hand"
  [[ $EUID -eq 0 ]] || die "missing ${missing[*]}: run as root to apt-get install them"
  echo "slurm_single_node.sh: apt-get install slurmctld slurmd munge slurm-client"
  export DEBIAN_FRONTEND=noninteractive
  local install=(apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 slurmctld slurmd munge slurm-client)
  local log=$STATE_DIR/log/apt.log
  mkdir -p "$STATE_DIR/log"
  # Stale or absent package lists (a fresh image): update once and retry. The packages' own chatter (services not
  # started without systemd) goes to the log.
  "${install[@]}" >"$log" 2>&1 || { apt-get update -qq >>"$log" 2>&1 && "${install[@]}" >>"$log" 2>&1; } ||
    { tail -n 20 "$log" >&2; die "apt-get could not install slurmctld slurmd munge slurm-client (full log: $log)"; }
}

write_conf() {
  local host node_line memory
  host=$(hostname -s)
  # slurmd -C prints this machine's node line (CPUs, sockets, cores, threads, RealMemory), so the node is never
  # drained for claiming more than it has. Keep 10 % of memory (at least 512 MB) for the daemons and the submitter.
  node_line=$(slurmd -C | head -n 1)
  [[ $node_line == NodeName=* ]] || die "slurmd -C printed '$node_line', not a node line"
  memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  node_line=${node_line/RealMemory=$memory/RealMemory=$((memory - (memory / 10 > 512 ? memory / 10 : 512)))}
  if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script: this machine already has a SLURM setup; use it, or move the file away"
  fi
  mkdir -p "$(dirname "$CONF")" "$STATE_DIR/ctld" "$STATE_DIR/d" "$STATE_DIR/log"
  local new
  new=$(cat <<EOF
$MARKER
ClusterName=scaling-lab-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Requeued jobs wait cred_expire + 1 s before they may start again (slurm.conf(5), AuthInfo); default 120 s.
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# One CPU per task, memory tracked: two 1-CPU jobs share a 2-CPU node (CR_CPU counts hyperthreads as CPUs).
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
# Start pending (and requeued) jobs within seconds, not the defaults' 60 s main loop / 30 s backfill loop.
SchedulerParameters=sched_interval=2,bf_interval=1
ReturnToService=2
JobRequeue=1
# Short timeouts: a test cluster on one machine. KillWait: seconds between SIGTERM and SIGKILL (submitit ignores
# SIGTERM, so a requeued job keeps training until SIGKILL).
KillWait=2
MinJobAge=300
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
Waittime=0
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
$node_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
  if [[ ! -e $CONF ]] || [[ $(cat "$CONF") != "$new" ]]; then
    printf '%s\n' "$new" >"$CONF"
    echo "slurm_single_node.sh: wrote $CONF"
    stop >/dev/null  # daemons read the config at start
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  # The Debian package creates /etc/munge/munge.key at install; a copied-in image may lack it.
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged
  touch "$STATE_DIR/munged.started-here"
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.25; done
  die "munged did not answer (munge -n | unmunge) within 5 s: see /var/log/munge/munged.log"
}

start() {
  [[ $EUID -eq 0 ]] || die "run as root (the daemons run as root here: SlurmUser=root)"
  install_packages
  write_conf
  start_munge
  alive "$STATE_DIR/slurmctld.pid" || slurmctld
  alive "$STATE_DIR/slurmd.pid" || slurmd
  local state=""
  for _ in $(seq $((WAIT_S * 2))); do
    state=$(sinfo --noheader --format=%t 2>/dev/null | head -n 1 || true)
    if [[ $state == idle || $state == mix || $state == alloc ]]; then
      echo "slurm_single_node.sh: node $(hostname -s) is $state ($(sinfo --noheader --format='%c CPUs, %m MB'))"
      return
    fi
    sleep 0.5
  done
  die "the node is not idle after ${WAIT_S} s (sinfo state '${state:-no answer}'): see $STATE_DIR/log/slurmctld.log and slurmd.log"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  *) die "unknown argument '$1': use start (default) or stop" ;;
esac

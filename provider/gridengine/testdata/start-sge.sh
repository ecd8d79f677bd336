#!/bin/bash
# start-sge.sh sets up a one-host Son of Grid Engine (Debian's gridengine
# packages) whose jobs run on this machine, for PARSL_TEST_SGE=1. Run as
# root. It follows shared/reference/batch-schedulers.md §3; the timings
# there (a 1 s scheduling interval, root allowed to run jobs) keep the
# real tests short.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive SGE_ROOT=/var/lib/gridengine SGE_CELL=default
host=$(hostname)
if ! command -v qsub >/dev/null; then
	for pkg in gridengine-master gridengine-common gridengine-client; do
		debconf-set-selections <<DEB
$pkg shared/gridenginemaster string $host
$pkg shared/gridenginecell string default
$pkg shared/gridengineconfig boolean true
DEB
	done
	apt-get install -y --no-install-recommends gridengine-master gridengine-exec gridengine-client
fi
# 127.0.0.1 reverse-resolves to localhost, which the qmaster would refuse
# as an unknown host.
echo "$host localhost" >"$SGE_ROOT/$SGE_CELL/common/host_aliases"
echo "$host" >"$SGE_ROOT/$SGE_CELL/common/act_qmaster"
/etc/init.d/gridengine-master start || true
sleep 1
qconf -as "$host" || true
/etc/init.d/gridengine-exec start || true
tmp=$(mktemp -d)
if ! qconf -sq all.q >/dev/null 2>&1; then
	cat >"$tmp/allq.conf" <<Q
qname all.q
hostlist $host
seq_no 0
load_thresholds NONE
suspend_thresholds NONE
nsuspend 1
suspend_interval 00:05:00
priority 0
min_cpu_interval 00:05:00
processors UNDEFINED
qtype BATCH INTERACTIVE
ckpt_list NONE
pe_list make
rerun FALSE
slots 4
tmpdir /tmp
shell /bin/sh
prolog NONE
epilog NONE
shell_start_mode posix_compliant
starter_method NONE
suspend_method NONE
resume_method NONE
terminate_method NONE
notify 00:00:60
owner_list NONE
user_lists NONE
xuser_lists NONE
subordinate_list NONE
complex_values NONE
projects NONE
xprojects NONE
calendar NONE
initial_state default
s_rt INFINITY
h_rt INFINITY
s_cpu INFINITY
h_cpu INFINITY
s_fsize INFINITY
h_fsize INFINITY
s_data INFINITY
h_data INFINITY
s_stack INFINITY
h_stack INFINITY
s_core INFINITY
h_core INFINITY
s_rss INFINITY
h_rss INFINITY
s_vmem INFINITY
h_vmem INFINITY
Q
	qconf -Aq "$tmp/allq.conf"
fi
qconf -ssconf >"$tmp/sconf"
sed -i 's/^schedule_interval.*/schedule_interval 0:0:1/; s/^flush_submit_sec.*/flush_submit_sec 1/; s/^flush_finish_sec.*/flush_finish_sec 1/' "$tmp/sconf"
qconf -Msconf "$tmp/sconf"
# The file must be named "global" for qconf -Mconf.
qconf -sconf global >"$tmp/global"
sed -i 's/^min_uid.*/min_uid 0/; s/^min_gid.*/min_gid 0/' "$tmp/global"
# By default the job shell starts as a login shell ("-bash") and runs the
# user's profile; on this machine root's profile runs `pyenv rehash`,
# which holds a lock that two jobs starting together wait up to 60 s for.
sed -i 's/^login_shells.*/login_shells NONE/' "$tmp/global"
qconf -Mconf "$tmp/global"
# The execd caches the old min_uid; a root job it refused put the queue in
# error state.
/etc/init.d/gridengine-exec restart
sleep 2
qmod -cq all.q || true
rm -rf "$tmp"
qstat -f

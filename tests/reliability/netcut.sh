#!/usr/bin/env bash
# A network cut between two hosts (issue 8): two network namespaces made by this test and joined
# by a veth pair, a `yoton pub` in one and a `yoton sub --verbose` in the other. The link is
# taken down while the subscriber listens: its heartbeat time-out must fire within the configured
# time (0.5 s; we allow 3 s). The link comes back: TCP retransmits, data flows again and a message
# sent during the cut arrives. Addresses are private to the namespaces (10.231.0.0/24), never on
# the host's network.
#
#   netcut.sh PATH_TO_YOTON_TOOL
#
# Exit 0: passed; 1: failed; 77: skipped (no root or no network namespaces here), with the reason
# printed.
set -u
tool=$1
SKIP=77
say() { printf 'netcut: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { say "skipped: network namespaces need root"; exit $SKIP; }
command -v ip >/dev/null || { say "skipped: no 'ip' command (iproute2)"; exit $SKIP; }

tag=$$
a=ytcutA$tag b=ytcutB$tag va=ytva$tag vb=ytvb$tag
va=${va:0:15} vb=${vb:0:15}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$a" 2>/dev/null
  ip netns del "$b" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if ! ip netns add "$a" 2>"$work/err"; then
  say "skipped: cannot create a network namespace here: $(cat "$work/err")"
  exit $SKIP
fi
ip netns add "$b" || exit 1
ip link add "$va" type veth peer name "$vb" || { say "skipped: no veth support"; exit $SKIP; }
ip link set "$va" netns "$a" && ip link set "$vb" netns "$b" || exit 1
ip -n "$a" addr add 10.231.0.1/24 dev "$va" && ip -n "$b" addr add 10.231.0.2/24 dev "$vb" || exit 1
ip -n "$a" link set "$va" up && ip -n "$b" link set "$vb" up || exit 1
ip -n "$a" link set lo up && ip -n "$b" link set lo up || exit 1

# wait_for FILE TEXT SECONDS: true once FILE contains TEXT.
wait_for() {
  local end=$((SECONDS + $3))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -ge "$end" ] && return 1
    sleep 0.05
  done
}

mkfifo "$work/in"
ip netns exec "$a" "$tool" pub 10.231.0.1:0 cut --verbose --timeout 60 <"$work/in" \
  >"$work/pub.out" 2>"$work/pub.err" &
pids+=($!)
exec 3>"$work/in"
wait_for "$work/pub.err" "bound at" 5 || { say "FAIL: the publisher did not bind"; cat "$work/pub.err"; exit 1; }
port=$(grep -o 'bound at 10.231.0.1:[0-9]*' "$work/pub.err" | cut -d: -f2)

ip netns exec "$b" "$tool" sub "10.231.0.1:$port" cut --verbose >"$work/sub.out" 2>"$work/sub.err" &
pids+=($!)
wait_for "$work/sub.err" "connected to context" 5 || { say "FAIL: the subscriber did not connect"; cat "$work/sub.err"; exit 1; }
echo "before the cut" >&3
wait_for "$work/sub.out" "before the cut" 5 || { say "FAIL: nothing arrived before the cut"; exit 1; }

t0=$(date +%s.%N)
ip -n "$a" link set "$va" down
wait_for "$work/sub.err" "timed out" 3 || { say "FAIL: no time-out within 3 s of the cut"; cat "$work/sub.err"; exit 1; }
t1=$(date +%s.%N)
echo "during the cut" >&3
sleep 1
ip -n "$a" link set "$va" up
wait_for "$work/sub.err" "data flows again" 15 || { say "FAIL: no data within 15 s of the link coming back"; cat "$work/sub.err"; exit 1; }
t2=$(date +%s.%N)
wait_for "$work/sub.out" "during the cut" 5 || { say "FAIL: the message sent during the cut was lost"; exit 1; }
say "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "time-out seen %.2f s after the cut; data again %.2f s after the time-out (link down 1 s); nothing lost", b - a, c - b }')"
exec 3>&-
exit 0

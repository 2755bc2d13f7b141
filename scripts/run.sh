#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is needed,
# builds parley, then
#   scripts/run.sh                 a live demo call between two local daemons
#   scripts/run.sh daemon [opts]   parleyd in the foreground for real use
#
# The demo starts two parleyd (alice, bob) on loopback, makes them contacts,
# and alice calls bob with video. Each sends speech generated with espeak-ng
# and writes what it hears to a WAV file, and sends the moving test pattern
# and writes what it sees to a Y4M file; call quality prints once a second;
# after
# DEMO_SECONDS (default 12) alice hangs up and both call histories print.
# Everything lands in out/demo/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/build.sh" "$ROOT/build"
BIN="$ROOT/build"

if [ "${1:-}" = "daemon" ]; then
  shift
  echo "parleyctl: $BIN/parleyctl   (try: $BIN/parleyctl status)" >&2
  exec "$BIN/parleyd" "$@"
fi

SECONDS_TO_TALK=${DEMO_SECONDS:-12}
OUT="$ROOT/out/demo"
rm -rf "$OUT"
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

espeak-ng -s 150 -w "$OUT/alice_says.wav" "Hello Bob, this is Alice, calling you over parley. \
Everything you hear is encrypted end to end, and goes peer to peer over QUIC."
espeak-ng -s 150 -w "$OUT/bob_says.wav" "Hi Alice, Bob here. I hear you loud and clear. \
The audio is Opus at forty eight kilohertz, twenty milliseconds a frame."

ctl() { local who=$1; shift; "$BIN/parleyctl" --socket "$OUT/$who/parleyd.sock" "$@"; }
for who in alice bob; do
  mkdir -p "$OUT/$who"
  XDG_CONFIG_HOME="$OUT/$who/config" XDG_DATA_HOME="$OUT/$who/data" \
    "$BIN/parleyd" --listen 127.0.0.1:0 --socket "$OUT/$who/parleyd.sock" \
    >"$OUT/$who/stdout" 2>"$OUT/$who/parleyd.log" &
  PIDS+=($!)
done
for who in alice bob; do
  until grep -q "parleyd: ready" "$OUT/$who/stdout" 2>/dev/null; do sleep 0.1; done
  echo "$who: $(grep 'peer id' "$OUT/$who/stdout")"
done
ALICE_TICKET=$(ctl alice --json ticket | sed -n 's/.*"ticket": *"\([^"]*\)".*/\1/p')
BOB_TICKET=$(ctl bob --json ticket | sed -n 's/.*"ticket": *"\([^"]*\)".*/\1/p')
ctl bob add "$ALICE_TICKET" --name alice >/dev/null
echo "bob added alice as a contact; alice calls bob's ticket"

# Bob answers as soon as the call rings, with his own speech as microphone.
ctl bob events >"$OUT/bob/events" 2>/dev/null &
PIDS+=($!)
ctl alice events >"$OUT/alice/events" 2>/dev/null &
PIDS+=($!)
sleep 0.3
CALL_ID=$(ctl alice --json rpc start_call "{\"peer\":\"$BOB_TICKET\", \"video\":true,
  \"audio_source\":\"file:$OUT/alice_says.wav\",\"audio_sink\":\"file:$OUT/alice_hears.wav\",
  \"video_source\":\"pattern\",\"video_sink\":\"y4m:$OUT/alice_sees.y4m\"}" |
  sed -n 's/.*"call_id": *"\([0-9a-f]*\)".*/\1/p')
echo "alice: calling, call id $CALL_ID"
until grep -q incoming-call "$OUT/bob/events"; do sleep 0.05; done
echo "bob: incoming call from alice; answering"
ctl bob rpc answer_call "{\"call_id\":\"$CALL_ID\",
  \"audio_source\":\"file:$OUT/bob_says.wav\",\"audio_sink\":\"file:$OUT/bob_hears.wav\",
  \"video_source\":\"pattern\",\"video_sink\":\"y4m:$OUT/bob_sees.y4m\"}" >/dev/null

# Quality once a second, as alice sees it.
shown=0
for _ in $(seq "$SECONDS_TO_TALK"); do
  sleep 1
  lines=$(grep -c call-quality "$OUT/alice/events" || true)
  if [ "$lines" -gt "$shown" ]; then
    grep call-quality "$OUT/alice/events" | tail -n 1 | /usr/bin/python3 -c '
import json, sys
line = sys.stdin.read()
q = json.loads(line[line.index("{"):])
print("alice: quality %-4s rtt %5.1f ms  loss %4.1f%%  jitter %4.1f ms  "
      "latency p50 %5.1f / p99 %5.1f ms  sent %2d kbps  received %2d kbps  "
      "concealed %d" % (q["quality"], q["rtt_ms"], q["loss_percent"],
      q["jitter_ms"], q["latency_p50_ms"], q["latency_p99_ms"],
      q["bitrate_sent"] // 1000, q["bitrate_received"] // 1000,
      q["frames_concealed"]))
v = q.get("video")
if v:
    print("       video %dx%d @ %4d kbps target, sent %4d kbps, received %4d kbps, "
          "shown %d, latency p50 %5.1f ms, lip sync %+.1f ms" % (
          v["width"], v["height"], v["bitrate_target_kbps"],
          v["bitrate_sent"] // 1000, v["bitrate_received"] // 1000,
          v["frames_displayed"], v["latency_p50_ms"], v["lipsync_ms"]))'
    shown=$lines
  fi
done

ctl alice hangup "$CALL_ID" >/dev/null 2>&1 || ctl alice rpc end_call "{\"call_id\":\"$CALL_ID\"}" >/dev/null
sleep 0.5
echo
echo "alice's history:"; ctl alice history
echo "bob's history:";   ctl bob history
echo
echo "what alice heard: $OUT/alice_hears.wav"
echo "what bob heard:   $OUT/bob_hears.wav"
echo "what alice saw:   $OUT/alice_sees.y4m   (play: ffplay $OUT/alice_sees.y4m)"
echo "what bob saw:     $OUT/bob_sees.y4m"

#!/usr/bin/env bash
# The container as its user runs it, timed (issue 19). Builds the image with `make image`, starts it on a copy
# of corpus/ and an empty index, saves notes on the host and asks about them, gives feedback, then removes the
# container, starts a new image on the same index, hands it an index built by another model, and mounts the
# index wrong on purpose. The index is a host folder, then a named volume. Prints Markdown for docs/benchmarks.md.
#
#   bash bench/container.sh            # or `make bench-container`; a few minutes
#   COLD=1 bash bench/container.sh     # the first build without the build cache
#
# Needs podman (or ENGINE=docker), curl and jq; publishes one port, on 127.0.0.1 only. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
IMAGE=notes-qa
NEXT=notes-qa:bench-next   # the "new image": the same code with one line added
NAME=notes-bench-$$
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
[ -f /etc/containers/local-base.conf ] && export CONTAINERS_CONF=/etc/containers/local-base.conf
work=$(mktemp -d)
chmod 755 "$work"

cleanup() {
  $ENGINE rm -f "$NAME" >/dev/null 2>&1 || true
  $ENGINE volume rm -f "$NAME-index" >/dev/null 2>&1 || true
  $ENGINE rmi "$NEXT" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# podman here has no systemd for its health-check timers, and says so at every run and rm: those lines go.
engine() { "$ENGINE" "$@" 2> >(grep -v 'systemd' >&2); }
say() { echo "-- $*" >&2; }
fail() { echo "FAILED: $*" >&2; $ENGINE logs "$NAME" 2>&1 | tail -20 >&2 || true; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
row() { printf '| %s | %s |\n' "$1" "$2" >> "$work/table"; }

# The container, detached, with the notes (read-only) and the index mounted.
start() {  # start IMAGE
  engine run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" \
    -v "$work/corpus:/srv/notes/corpus:ro" -v "$INDEX:/srv/notes/indexes" "$1" >/dev/null
}

# Seconds from $1 until /healthz answers 200; then the image's own HEALTHCHECK must pass too.
healthy() {
  local t0=$1
  until curl -sf "$URL/healthz" >/dev/null; do
    [ "$($ENGINE inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container stopped"
    [ "$(since "$t0" | cut -d. -f1)" -lt 300 ] || fail "not healthy within 300 s"
    sleep 0.2
  done
  since "$t0"
  if [ "$ENGINE" = podman ]; then
    engine healthcheck run "$NAME" >/dev/null || fail "HEALTHCHECK failed"
  else
    local status
    until status=$($ENGINE inspect -f '{{.State.Health.Status}}' "$NAME") && [ "$status" = healthy ]; do
      [ "$status" != unhealthy ] || fail "HEALTHCHECK failed"
      sleep 1
    done
  fi
}

health() { curl -sf "$URL/healthz" | jq -r "$1"; }
ask() { curl -sf "$URL/ask" -H 'Content-Type: application/json' -d "$(jq -n --arg q "$1" '{question: $q}')"; }
# A command in a throwaway container on the same index, as the user the image chooses for it.
in_index() { engine run --rm -v "$INDEX:/srv/notes/indexes" "$IMAGE" sh -c "$1"; }
handed() { $ENGINE logs "$NAME" 2>&1 | grep 'belongs to root' >/dev/null && echo "handed to uid 10001, " || true; }
model_builds() { $ENGINE logs "$NAME" 2>&1 | grep -c 'Building the model' || true; }
embedded() { $ENGINE logs "$NAME" 2>&1 | grep -o '[0-9]* chunks ([0-9]* embedded), [0-9.]* s' | tail -1; }

# A note on a made-up topic, so that only it can answer its question (as bench/watch.py does).
note() {  # note TOPIC LAYERS -> Markdown
  printf -- '---\ntitle: %s纹理网络\n---\n\n%s纹理网络用 %s 层空洞卷积提取布料的纹理特征, 再用一层注意力汇总。\n' "$1" "$1" "$2"
}
# Does /ask cite note $1 first for question $2, with $3 in its answer?
cites() {  # cites ID QUESTION NEEDLE
  local body
  body=$(ask "$2") && jq -e --arg id "$1" --arg needle "$3" \
    '.found and .citations[0].post_id == $id and (.answer | contains($needle))' <<< "$body" >/dev/null
}
# Seconds from writing $1.md until it is cited so.
save_and_ask() {  # save_and_ask ID QUESTION NEEDLE < Markdown
  cat > "$work/corpus/$1.md"
  local t0
  t0=$(now)
  until cites "$@"; do
    [ "$(since "$t0" | cut -d. -f1)" -lt 60 ] || fail "$1 not answered within 60 s"
    sleep 0.1
  done
  since "$t0"
}

# 1. The image.
say "building $IMAGE"
t0=$(now)
make -s image ${COLD:+EXTRA_FLAGS=--no-cache} >/dev/null
row "build (\`make image\`$([ -n "${COLD:-}" ] && echo ', no cache' || echo ', cache as it was'))" "$(since "$t0") s"
size=$($ENGINE image inspect -f '{{.Size}}' "$IMAGE")
row "image size" "$((size / 1000000)) MB"
$ENGINE image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE" | grep '/healthz' >/dev/null || fail "no HEALTHCHECK"
row "HEALTHCHECK in the image" "yes, on /healthz"
leftovers=$(engine run --rm --entrypoint sh "$IMAGE" -c \
  'ls /opt/notes; find / -xdev \( -name "notes_qa*" -o -path /opt/notes/build -o -path /root/.cache \) -print')
row "what the image holds of the project" "$(echo $leftovers) (no build/, egg-info or pip cache)"

# A copy of the repository as the build context, built once as it is; then a note edited in it must leave the
# image as it was (the notes are not in it), and a line of code changed makes the new image of step 4.
ctx=$work/context
mkdir "$ctx"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -c | tar -x -C "$ctx"
image_id() { $ENGINE image inspect -f '{{.Id}}' "$1" | cut -c1-12; }
make -s image CONTEXT="$ctx" >/dev/null
before=$(image_id "$IMAGE")
echo "Edited in the build context." >> "$ctx/corpus/$(ls corpus | grep '\.md$' | head -1)"
t0=$(now)
make -s image CONTEXT="$ctx" >/dev/null
t=$(since "$t0")
[ "$(image_id "$IMAGE")" = "$before" ] || fail "editing a note changed the image"
row "one note edited -> \`make image\`" "$t s, the same image (the notes are not in it)"
echo "# changed by bench/container.sh" >> "$ctx/app/__init__.py"
t0=$(now)
make -s image CONTEXT="$ctx" IMAGE="$NEXT" >/dev/null
row "one line of code changed -> new image" "$(since "$t0") s (the code's layers only; no model work)"

Q=青柠纹理网络用几层空洞卷积?
for kind in folder volume; do
  say "the index as a $kind"
  rm -rf "$work/corpus"
  cp -r corpus "$work/corpus"
  notes=$(ls "$work/corpus" | grep -c '\.md$')
  if [ $kind = folder ]; then
    INDEX=$work/indexes; mkdir "$INDEX"   # root-owned, as a folder root made: the crash of the issue
  else
    INDEX=$NAME-index; $ENGINE volume create "$INDEX" >/dev/null
  fi

  # 2. First start: the model is built into the index volume and every mounted note ingested before serving.
  t0=$(now)
  start "$IMAGE"
  t=$(healthy "$t0")
  row "$kind: first start -> healthy" "$t s ($(handed)model built $(model_builds)x, $(embedded))"
  row "$kind: notes served at first start" "$(health .posts) of $notes mounted"
  row "$kind: process user" "uid $($ENGINE exec "$NAME" awk '/^Uid/ { print $2 }' /proc/1/status)"

  # 3. Notes saved on the host, a few seconds apart (the watcher's next ingest gets ready in between), then
  #    one of them edited; feedback on its answer.
  times=""
  for pair in lime:青柠 durian:榴莲 starfruit:杨桃; do
    sleep 5
    topic=${pair#*:}
    t=$(note "$topic" 3 | save_and_ask "bench-${pair%%:*}" "${topic}纹理网络用几层空洞卷积?" "3 层")
    times="$times $t"
  done
  row "$kind: note saved -> /ask cites it" "$times s"
  sleep 5
  t=$(note 青柠 7 | save_and_ask bench-lime "$Q" "7 层")
  row "$kind: note edited -> /ask answers from the edit" "$t s, model built $(model_builds)x in all"
  ask "$Q" | jq --arg q "$Q" '{question: $q, answer, citations, verdict: "up"}' |
    curl -sf "$URL/feedback" -H 'Content-Type: application/json' -d @- >/dev/null

  # 4. Removed, then a new image on the same index: nothing is embedded again, the feedback is kept.
  engine rm -f "$NAME" >/dev/null
  t0=$(now)
  start "$NEXT"
  t=$(healthy "$t0")
  row "$kind: \`$ENGINE rm\`, new image -> healthy" "$t s (model built $(model_builds)x, $(embedded))"
  cites bench-lime "$Q" "7 层" || fail "the edited note is not answered"
  kept=$(in_index 'wc -l < /srv/notes/indexes/feedback.jsonl')
  row "$kind: after it" "$(health .posts) of $(ls "$work/corpus" | grep -c '\.md$') notes served, the edit answered, $kept feedback record(s)"

  # 5. An index built by another model (as an older image's would be): embedded again, not served.
  engine rm -f "$NAME" >/dev/null
  in_index 'cd /srv/notes/indexes && sed -i "s#multilingual-e5-small/fused-int8[a-z-]*#multilingual-e5-small/fused-fp32#" "builds/$(cat CURRENT)/manifest.json"'
  t0=$(now)
  start "$NEXT"
  t=$(healthy "$t0")
  row "$kind: index of another model -> healthy" "$t s ($(embedded), serving $(health .embedder))"

  # 6. Mounted wrong: one line that says what to do.
  engine rm -f "$NAME" >/dev/null
  notes_ro=(-v "$work/corpus:/srv/notes/corpus:ro")
  row "$kind: index mounted :ro" "$(engine run --rm "${notes_ro[@]}" -v "$INDEX:/srv/notes/indexes:ro" "$IMAGE" 2>&1)"
  row "$kind: \`--user 12345\`" "$(engine run --rm --user 12345 "${notes_ro[@]}" -v "$INDEX:/srv/notes/indexes" "$IMAGE" 2>&1)"
  [ $kind = folder ] || $ENGINE volume rm -f "$INDEX" >/dev/null
done

echo "| $ENGINE, $(date -u +%Y-%m-%d), $(nproc) cores | |"
echo "|---|---|"
cat "$work/table"

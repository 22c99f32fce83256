#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), then minimizes each corpus
# back into fuzz/corpus/<target>. Inputs with names of their own (seed-*, regression-*) are kept as
# they are; libFuzzer's finds are kept only if they add coverage. Needs the nightly toolchain;
# installs cargo-fuzz if it is missing. A crash leaves its input in fuzz/artifacts/<target>/ and
# stops the script: reproduce it with `cargo +nightly fuzz run -a -s none TARGET FILE` in fuzz/.
#
#   scripts/fuzz.sh [SECONDS]     (0: only minimize the corpora)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is required: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Debug assertions on (as in the stable replay test), no sanitizer: the code under test has no
# unsafe Rust, and without ASan the targets run about twice as fast.
flags=(-a -s none)
cargo +nightly fuzz build "${flags[@]}"

for target in $(cargo +nightly fuzz list); do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    if [ "$seconds" -gt 0 ]; then
        echo "== $target: fuzzing for ${seconds}s"
        cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" -- \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
            grep -E '^(#[0-9]+ +(INITED|DONE)|stat::|==|Done|INFO: seed corpus|.*panicked at)' || true
        if find "artifacts/$target" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' | grep -q .; then
            echo "$target found a failing input: see fuzz/artifacts/$target/" >&2
            exit 1
        fi
    fi

    echo "== $target: minimizing the corpus"
    merged=$(mktemp -d)
    # The smallest set of inputs that covers every edge the corpus covers (hit counts ignored: they
    # would keep hundreds of near-copies of the large inputs).
    cargo +nightly fuzz run "${flags[@]}" "$target" "$merged" "$corpus" -- \
        -set_cover_merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=4096 2>&1 |
        grep -E '^MERGE-OUTER: [0-9]+ new files' || true
    # libFuzzer names inputs by their SHA-1: drop its old finds, keep the named inputs, and add the
    # merged finds that are not a named input under another name.
    hashed=(-regextype posix-extended -regex '.*/[0-9a-f]{40}')
    named_sums=$(find "$corpus" -type f ! "${hashed[@]}" -exec sha1sum {} + | cut -d' ' -f1)
    find "$corpus" -type f "${hashed[@]}" -delete
    for f in "$merged"/*; do
        [ -e "$f" ] || continue
        sum=$(basename "$f")
        if ! grep -qx "$sum" <<<"$named_sums"; then
            cp "$f" "$corpus/$sum"
        fi
    done
    rm -rf "$merged"
    echo "$target: $(find "$corpus" -type f | wc -l) inputs, $(cat "$corpus"/* | wc -c) bytes"
done

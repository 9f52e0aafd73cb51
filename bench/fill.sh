# Sourced by bench/growth and bench/purge: a migrated SQLite data dir filled
# by SQL, faster than through Inlet by orders of magnitude.
# Needs ROOT and INLET_BIN set.

# The headers as the receiver stores them for the benchmark's request.
STORED_HEADERS='{"host":"127.0.0.1:8080","user-agent":"GitHub-Hookshot/bench","content-length":"1024","content-type":"application/json","x-github-event":"push","x-hub-signature-256":"[redacted]"}'

# sqlite3 for the fill, and the release build unless BENCH_SKIP_BUILD=1.
prepare_fill() {
    command -v sqlite3 >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
    [ "${BENCH_SKIP_BUILD:-}" = 1 ] || (cd "$ROOT" && cargo build --release -p inlet --quiet)
}

# fill_store DIR SECONDS: a fresh, migrated data dir in DIR, then the SQL on
# standard input in one transaction (unflushed: the fill is thrown away on a
# crash anyway), with the log checkpointed into the database afterwards.
fill_store() {
    local dir=$1 limit=$2
    rm -rf "$dir"
    mkdir -p "$dir"
    INLET_DATA_DIR=$dir INLET_PACKS_DIR=$ROOT/packs INLET_LOG=warn timeout 120 "$INLET_BIN" migrate >/dev/null
    { printf 'PRAGMA journal_mode = WAL;\nPRAGMA synchronous = OFF;\nPRAGMA cache_size = -500000;\nBEGIN;\n'
      cat
      printf 'COMMIT;\nPRAGMA wal_checkpoint(TRUNCATE);\n'
    } | timeout "$limit" sqlite3 "$dir/inlet.db" >/dev/null
}

# shellcheck shell=bash
# How scripts/test counts what ran and sums it up. Source it; `scripts/test --self-test`
# checks these functions on canned output.

# count_results LOG -> "PASSED FAILED": the sum over cargo's `test result:` lines (one per test
# binary and doc-test run) and test-arm's `qemu binary checks: N passed, M failed` lines.
count_results() {
    grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed|qemu binary checks: [0-9]+ passed, [0-9]+ failed' "$1" |
        grep -Eo '[0-9]+ (passed|failed)' |
        awk '$2 == "passed" { p += $1 } $2 == "failed" { f += $1 } END { print p + 0, f + 0 }'
}

# summarize LOG UNCOUNTED [FAILED_STAGE...]: prints the failed stages (if any) on one line,
# then, as the very last line, `summary: N passed, M failed` (CI parses that form). M is the
# failed tests in LOG plus UNCOUNTED, the failed stages that reported no failed test of their
# own (a setup script, a lint, a build), so that M is 0 exactly when everything passed.
# Returns 1 when anything failed.
summarize() {
    local log="$1" uncounted="$2" passed failed
    shift 2
    read -r passed failed < <(count_results "$log")
    if (($#)); then
        local list
        list="$(printf '%s; ' "$@")"
        echo "failed stages: ${list%; }"
    fi
    failed=$((failed + uncounted))
    echo "summary: $passed passed, $failed failed"
    ((failed == 0 && $# == 0))
}

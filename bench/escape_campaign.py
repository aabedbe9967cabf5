"""Escape and honest-verdict campaign: every attack and fault of issue 20, each tried N times, as the tests stage
them (real CLI processes, bwrap, the moto S3 server behind the fault proxy, the local OpenAI-compatible server).
Prints one row per attack: tries, held. Every row must be N/N.

    python bench/escape_campaign.py [N]      # N tries each (default 5)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from _common import ROOT

ATTACKS = {
    "test_file_names_from_a_saved_dataset_or_an_entry_never_leave_the_run_folder":
        "scenario files named /tmp/PWN, ../ (saved dataset, registry entry, later datum)",
    "test_a_planted_link_on_the_way_is_refused": "a link planted on the way of a data-named file",
    "test_nothing_copied_out_of_a_sandbox_is_followed_or_unbounded":
        "Results copy: links to /proc/self/environ, /dev/zero, /etc/shadow, /; a FIFO; a file over the budget",
    "test_copy_out_never_reads_through_links_or_devices": "copy-out of links and FIFOs (library level)",
    "test_the_limits_hold_for_a_cli_that_does_not_run_as_root": "non-root CLI: 640 MiB written to / against 64 MiB",
    "test_one_fork_bomb_fails_none_of_its_neighbours": "a fork bomb beside 7 innocent concurrent sandboxes",
    "test_a_sandbox_that_cannot_start_is_an_error_never_a_verdict": "a sandbox that cannot start (no processes)",
    "test_a_crashed_scenario_is_an_error_retried_never_cached": "scenario.py exits 3 (after printing PASSED)",
    "test_the_relay_answers_malformed_requests_and_caps_each_datum":
        "8 malformed relay requests; relay call and token caps",
    "test_temp_folders_of_a_killed_run_are_removed_by_the_next": "kill -9 mid-run: temp folders, partial downloads",
    "test_plans_are_bounded_whatever_their_size": "--num_repeats=1e9, 3M-answer plans, rollouts=1e9 --dry_run",
    "test_null_or_blank_answers_are_retried_counted_apart_and_never_cached": "null / blank answers from the model",
    "test_an_empty_answer_then_a_real_one_is_a_verdict": "one empty answer, then a real one",
    "test_a_failed_upload_leaves_nothing_a_later_one_reuses_and_gc_removes_it":
        "every blob PUT altered in transit, then a healthy upload and gc",
    "test_a_corrupt_local_blob_is_removed_by_gc_and_written_again_by_the_next_upload": "a corrupt local blob",
    "test_a_blob_altered_on_the_way_down_is_fetched_again_then_named_as_such": "blob GETs altered in transit",
    "test_no_upload_reports_success_for_a_version_holding_another_manifest":
        "24 racing uploads of one version, If-None-Match dropped after the probe",
}
FILES = ("tests/test_escapes.py", "tests/test_integrity.py", "tests/test_answers.py")


def main(n: int) -> int:
    tries: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for i in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "junit.xml"
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES,
                            f"--junitxml={report}", "-k", " or ".join(ATTACKS)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for case in ET.parse(report).getroot().iter("testcase"):
                name = case.get("name", "").split("[")[0]
                if name not in ATTACKS or case.find("skipped") is not None:
                    continue
                tries[name] += 1
                held[name] += case.find("failure") is None and case.find("error") is None
        print(f"round {i + 1}/{n} done", file=sys.stderr)
    print("| attack or fault | tries | held |\n|---|---|---|")
    for name, what in ATTACKS.items():
        print(f"| {what} | {tries[name]} | {held[name]} |")
    return 0 if all(held[k] == tries[k] == n for k in ATTACKS) else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

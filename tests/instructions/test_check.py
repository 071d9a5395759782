"""The budget check's own logic (`python3 -m unittest discover -s tests/instructions`): the
comparison fails past 5% with both numbers and the way to update, budgets.txt is read and
rewritten line by line, and a malformed line is an error that says where."""

import tempfile
import unittest
from pathlib import Path

import check

LINE = ("collector-ingest-sqlite  |     100,000 | 2026-12-01  | event   | -p audit-collector --example ingest_cost"
        "    | release/examples/ingest_cost | 2000\n")


def budgets_file(text):
    handle = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    handle.write(text)
    handle.close()
    return Path(handle.name)


class Comparison(unittest.TestCase):
    def probe(self):
        return check.read_budgets(budgets_file("# comment\n" + LINE))[0]

    def test_within_five_percent_passes(self):
        self.assertIsNone(check.verdict(self.probe(), 105_000))
        self.assertIsNone(check.verdict(self.probe(), 60_000))

    def test_over_five_percent_fails_with_both_numbers_and_the_update_command(self):
        message = check.verdict(self.probe(), 105_001)
        self.assertIsNotNone(message)
        for part in ("105,001", "100,000", "2026-12-01", "--update collector-ingest-sqlite"):
            self.assertIn(part, message)

    def test_a_budget_ten_percent_lower_fails(self):
        self.assertIsNotNone(check.verdict(self.probe(), 100_000, budget=90_000))


class BudgetFile(unittest.TestCase):
    def test_update_rewrites_only_the_named_line(self):
        path = budgets_file("# header | with | bars\n" + LINE + LINE.replace("collector-ingest-sqlite", "other"))
        check.write_budget("collector-ingest-sqlite", 123_456, path=path, today="2026-12-04")
        probes = check.read_budgets(path)
        self.assertEqual([(p["probe"], p["budget"], p["measured_on"]) for p in probes],
                         [("collector-ingest-sqlite", 123_456, "2026-12-04"), ("other", 100_000, "2026-12-01")])
        self.assertTrue(path.read_text().startswith("# header | with | bars\n"))

    def test_a_malformed_line_says_where(self):
        with self.assertRaisesRegex(check.BudgetError, r":2: 3 fields, expected 7"):
            check.read_budgets(budgets_file("# ok\na | b | c\n"))

    def test_the_repository_budgets_parse(self):
        self.assertTrue(check.read_budgets())


if __name__ == "__main__":
    unittest.main()

"""A DiscoverRunner that also writes each test's outcome to $TOCSIN_SUITE_RESULTS (JSON),
so that scripts/test-django can compare the tocsin run with the control, test by test."""

import json
import os
import unittest

from django.test.runner import DiscoverRunner


class RecordingResult(unittest.TextTestResult):
    """Django's usual text result, remembering the outcome of every test id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _record(self, test, outcome):
        # A failure (of a subtest, say) is never overwritten by a later success.
        test_id = test.id()
        if self.outcomes.get(test_id) not in {"failed", "error"}:
            self.outcomes[test_id] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "failed" if failed else "error")


class RecordingRunner(DiscoverRunner):
    def get_resultclass(self):
        base = super().get_resultclass()
        if base is None:
            return RecordingResult
        return type("Recording" + base.__name__, (RecordingResult, base), {})

    def suite_result(self, suite, result, **kwargs):
        path = os.environ.get("TOCSIN_SUITE_RESULTS")
        if path:
            with open(path, "w") as file:
                json.dump(result.outcomes, file, indent=0, sort_keys=True)
        return super().suite_result(suite, result, **kwargs)

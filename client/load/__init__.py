"""The load tester: many real player sessions at once, chaos on a schedule, SLOs, reports."""

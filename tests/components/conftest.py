"""Shared set-up of the infrastructure tests (the mocks themselves live in tests/pulumi_mocks.py)."""


def pytest_configure(config):
    # pulumi_aws warns about its own deprecated aliases on import: noise, not our code.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")

import pytest


@pytest.fixture(autouse=True)
def _marking_on_again():
    """Marking is process-wide (retarget.provenance.configure): every test starts and ends with the default (on)."""
    from retarget import provenance
    from retarget.config import ProvenanceOptions

    provenance.configure(ProvenanceOptions())
    yield
    provenance.configure(ProvenanceOptions())

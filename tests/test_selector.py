from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.profiles import all_profiles


def test_live_set_picks_its_own_profile():
    sel = ProfileSelector(all_profiles())
    assert sel.select({"rgb", "audio"}) == "rgb+audio"
    assert sel.select({"audio"}) == "audio"
    assert sel.select({"flow", "rgb", "audio"}) == "rgb+flow+audio"


def test_nothing_live_selects_nothing():
    assert ProfileSelector(all_profiles()).select(set()) is None


def test_missing_profile_falls_back_to_the_largest_subset_of_the_live_set():
    sel = ProfileSelector(["rgb+audio", "rgb", "audio"])
    assert sel.select({"rgb", "flow", "audio"}) == "rgb+audio"
    assert sel.select({"rgb", "flow"}) == "rgb"
    assert sel.select({"flow"}) is None

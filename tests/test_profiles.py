import pytest

from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import all_profiles, expand_profiles, parse_profile, profile_name


def test_all_profiles_are_the_seven_subsets_in_canonical_order():
    assert all_profiles() == ["rgb+flow+audio", "rgb+flow", "rgb+audio", "flow+audio", "rgb", "flow", "audio"]
    assert all_profiles(("audio", "rgb")) == ["rgb+audio", "rgb", "audio"]


def test_names_in_another_order_are_normalised():
    assert profile_name(parse_profile("audio+RGB")) == "rgb+audio"
    assert expand_profiles("audio+rgb,rgb+audio,flow") == ["rgb+audio", "flow"]


@pytest.mark.parametrize("bad", ["rgb+smell", "", "rgb++audio", "depth"])
def test_unknown_or_malformed_names_are_user_errors(bad):
    with pytest.raises(KarmmaError):
        parse_profile(bad)


def test_unknown_modality_error_lists_the_valid_ones():
    with pytest.raises(KarmmaError, match="rgb, flow, audio"):
        parse_profile("rgb+smell")


def test_profile_outside_the_model_names_the_model_modalities():
    with pytest.raises(KarmmaError, match="its modalities: rgb, audio"):
        parse_profile("flow", allowed=("rgb", "audio"))

"""The state machines: which transitions the tables allow, and host_status."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.domain.errors import Conflict, IllegalTransition
from vigil.domain.model import Host
from vigil.domain.states import (
    ADMIN_TRANSITIONS,
    DATA_PLANE_TRANSITIONS,
    INSTANCE_TRANSITIONS,
    RESETTABLE_STATES,
    AdminState,
    DataPlaneStatus,
    HostStatus,
    InstanceState,
    derive_host_status,
)

I = InstanceState  # noqa: E741 - short alias for the table below

# The instance life cycle written out independently of the code: old -> the
# other states it may go to.
EXPECTED_INSTANCE_MOVES: dict[InstanceState, set[InstanceState]] = {
    I.BUILD: {I.ACTIVE, I.SHUTOFF, I.ERROR, I.DELETED},
    I.ACTIVE: {I.SHUTOFF, I.MIGRATING, I.ERROR, I.BUILD, I.DELETED},
    I.SHUTOFF: {I.ACTIVE, I.MIGRATING, I.ERROR, I.BUILD, I.DELETED},
    I.MIGRATING: {I.ACTIVE, I.SHUTOFF, I.ERROR},
    I.ERROR: {I.ACTIVE, I.BUILD, I.DELETED},
    I.DELETED: set(),
}


def test_every_instance_state_is_covered_by_the_expected_table() -> None:
    assert set(EXPECTED_INSTANCE_MOVES) == set(InstanceState)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(InstanceState, InstanceState)))
def test_instance_table_allows_exactly_the_documented_moves(old: InstanceState, new: InstanceState) -> None:
    expected = old == new or new in EXPECTED_INSTANCE_MOVES[old]
    assert INSTANCE_TRANSITIONS.allows(old, new) is expected


@pytest.mark.parametrize("state", list(InstanceState))
def test_staying_in_the_same_state_is_always_allowed(state: InstanceState) -> None:
    assert INSTANCE_TRANSITIONS.check("vm-1", state, state) is state


def test_deleted_is_final() -> None:
    assert INSTANCE_TRANSITIONS.successors(I.DELETED) == frozenset()
    for state in set(InstanceState) - {I.DELETED}:
        assert not INSTANCE_TRANSITIONS.allows(I.DELETED, state)


def test_a_migration_cannot_be_rebuilt_or_deleted_midway() -> None:
    assert not INSTANCE_TRANSITIONS.allows(I.MIGRATING, I.BUILD)
    assert not INSTANCE_TRANSITIONS.allows(I.MIGRATING, I.DELETED)


def test_check_returns_the_new_state_when_allowed() -> None:
    assert INSTANCE_TRANSITIONS.check("vm-1", I.BUILD, I.ACTIVE) is I.ACTIVE


def test_check_raises_illegal_transition_naming_kind_ident_old_and_new() -> None:
    with pytest.raises(IllegalTransition) as caught:
        INSTANCE_TRANSITIONS.check("vm-1", I.DELETED, I.ACTIVE)
    error = caught.value
    assert (error.kind, error.ident, error.old, error.new) == ("instance", "vm-1", "DELETED", "ACTIVE")
    assert str(error) == "instance 'vm-1' cannot go from DELETED to ACTIVE"


def test_illegal_transition_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        INSTANCE_TRANSITIONS.check("vm-1", I.BUILD, I.MIGRATING)


def test_successors_lists_the_allowed_next_states() -> None:
    assert INSTANCE_TRANSITIONS.successors(I.MIGRATING) == {I.ACTIVE, I.SHUTOFF, I.ERROR}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(AdminState, AdminState)))
def test_a_host_may_be_enabled_and_disabled_freely(old: AdminState, new: AdminState) -> None:
    assert ADMIN_TRANSITIONS.check("compute-1", old, new) is new


@pytest.mark.parametrize(("old", "new"), list(itertools.product(DataPlaneStatus, DataPlaneStatus)))
def test_a_port_data_plane_goes_up_and_down_freely(old: DataPlaneStatus, new: DataPlaneStatus) -> None:
    assert DATA_PLANE_TRANSITIONS.check("port-1", old, new) is new


def test_a_table_refuses_a_state_it_does_not_list_with_its_own_kind() -> None:
    with pytest.raises(IllegalTransition) as caught:
        ADMIN_TRANSITIONS.check("compute-1", AdminState.ENABLED, "retired")  # type: ignore[arg-type]
    assert caught.value.kind == "host"
    assert caught.value.new == "retired"


def test_reset_state_may_set_only_active_or_error() -> None:
    assert set(RESETTABLE_STATES) == {I.ACTIVE, I.ERROR}


def test_states_are_the_strings_nova_and_neutron_use() -> None:
    assert [str(s) for s in InstanceState] == ["BUILD", "ACTIVE", "SHUTOFF", "MIGRATING", "ERROR", "DELETED"]
    assert {str(s) for s in HostStatus} == {"UP", "DOWN", "MAINTENANCE", "UNKNOWN"}
    assert str(AdminState.DISABLED) == "disabled"
    assert str(DataPlaneStatus.DOWN) == "DOWN"


@pytest.mark.parametrize(
    ("admin_state", "forced_down", "reachable", "expected"),
    [
        (AdminState.ENABLED, False, True, HostStatus.UP),
        (AdminState.ENABLED, False, False, HostStatus.UNKNOWN),
        (AdminState.DISABLED, False, True, HostStatus.MAINTENANCE),
        (AdminState.DISABLED, False, False, HostStatus.MAINTENANCE),
        (AdminState.ENABLED, True, True, HostStatus.DOWN),
        (AdminState.ENABLED, True, False, HostStatus.DOWN),
        (AdminState.DISABLED, True, True, HostStatus.DOWN),
        (AdminState.DISABLED, True, False, HostStatus.DOWN),
    ],
)
def test_host_status_follows_novas_precedence(
    admin_state: AdminState, forced_down: bool, reachable: bool, expected: HostStatus
) -> None:
    assert derive_host_status(admin_state=admin_state, forced_down=forced_down, reachable=reachable) is expected


@given(admin_state=st.sampled_from(AdminState), forced_down=st.booleans(), reachable=st.booleans())
def test_host_status_is_up_exactly_when_nothing_is_wrong_and_the_strongest_fault_wins(
    admin_state: AdminState, forced_down: bool, reachable: bool
) -> None:
    status = derive_host_status(admin_state=admin_state, forced_down=forced_down, reachable=reachable)
    faults = [
        (forced_down, HostStatus.DOWN),
        (admin_state is AdminState.DISABLED, HostStatus.MAINTENANCE),
        (not reachable, HostStatus.UNKNOWN),
    ]
    strongest = next((result for present, result in faults if present), HostStatus.UP)
    assert status is strongest
    host = Host(name="h", admin_state=admin_state, forced_down=forced_down, reachable=reachable)  # type: ignore[arg-type]
    assert host.status is status
    assert host.schedulable is (status is HostStatus.UP)

"""langgraph-checkpoint-conformance against DynamoDBSaver, on dynalite and on moto."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from opx.durability.dynamodb import DynamoDBSaver
from tests.fixtures_servers import new_table

# langgraph-checkpoint-conformance 0.0.2: 58 base and 23 extended tests.
EXPECTED_TESTS = 81


@pytest.mark.parametrize("server", ["dynalite", "moto"])
async def test_every_capability_passes(
    server: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = request.getfixturevalue(f"{server}_endpoint")
    table = new_table(endpoint)

    @checkpointer_test(name=f"DynamoDBSaver on {server}")
    async def saver() -> AsyncGenerator[DynamoDBSaver, None]:
        instance = DynamoDBSaver(table.name, table.client)
        try:
            yield instance
        finally:
            instance.close()

    report = await validate(saver)
    results = report.results
    passed = sum(r.tests_passed for r in results.values())
    failures = [f for r in results.values() for f in r.failures]
    detail = ", ".join(f"{c} {r.tests_passed}" for c, r in sorted(results.items()))
    with capsys.disabled():
        print(f"\nconformance of DynamoDBSaver on {server}: {passed}/{EXPECTED_TESTS} ({detail})")
    assert not failures, failures
    assert {c.value for c in ALL_CAPABILITIES} == {c for c, r in results.items() if r.detected}
    assert report.passed_all()
    assert passed == EXPECTED_TESTS

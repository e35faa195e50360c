"""Issue 10, adversarial review: what collecting a module reads beyond its items' inputs.

A module summary records the items a module yields and the files defining them. Which files
those are, and which items exist, can change through a module the test module imports without
any stored file changing: a re-export repointed, a star import gaining a test or a fixture. The
slow path sees it by importing; the fast path must too (the module's static import closure and
its conftests' are part of its scope, :mod:`pytest_unchanged.collection`). Each test records a
pass, changes only such a module, and checks that the fast path runs what the slow path runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import commit

FAST_PATH = pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast", "slow"])


def run(pytester: pytest.Pytester, fast_path: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--unchanged", "-p", "no:randomly", "-o", f"unchanged_fast_path={fast_path}"
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


FIXTURE = "import pytest\n\n@pytest.fixture\ndef val():\n    return {}\n"

CASES = {
    "base class re-exported": (
        {
            "tests/contract_a.py": "class Base:\n    def test_contract(self):\n        pass\n",
            "tests/contract_b.py": "class Base:\n    def test_contract(self):\n        assert 0\n",
            "tests/bases.py": "from tests.contract_a import Base\n",
            "tests/test_x.py": (
                "import pytest\nfrom tests.bases import Base\n\n"
                '@pytest.mark.depends_on("data.txt")\nclass TestX(Base):\n    pass\n'
            ),
        },
        {"tests/bases.py": "from tests.contract_b import Base\n"},
    ),
    "base class reached through pkgutil.resolve_name": (
        {
            "tests/contract_a.py": "class Base:\n    def test_contract(self):\n        pass\n",
            "tests/contract_b.py": "class Base:\n    def test_contract(self):\n        assert 0\n",
            "tests/mid.py": "from tests.contract_a import Base\n",
            "tests/test_x.py": (
                "import pkgutil\nimport pytest\n\n"
                'Base = pkgutil.resolve_name("tests.mid").Base\n\n'
                '@pytest.mark.depends_on("data.txt")\nclass TestX(Base):\n    pass\n'
            ),
        },
        {"tests/mid.py": "from tests.contract_b import Base\n"},
    ),
    "base class reached through import_module.__call__ (round 3, finding 7)": (
        {
            "tests/contract_a.py": "class Base:\n    def test_contract(self):\n        pass\n",
            "tests/contract_b.py": "class Base:\n    def test_contract(self):\n        assert 0\n",
            "tests/mid.py": "from tests.contract_a import Base\n",
            "tests/test_x.py": (
                "import importlib\nimport pytest\n\n"
                'Base = importlib.import_module.__call__("tests.mid").Base\n\n'
                '@pytest.mark.depends_on("data.txt")\nclass TestX(Base):\n    pass\n'
            ),
        },
        {"tests/mid.py": "from tests.contract_b import Base\n"},
    ),
    "parameters loaded by pickle (round 3, finding 7)": (
        {
            "tests/cases.py": "NUMS = [1]\n",
            "tests/test_x.py": (
                "import pickle\nimport pytest\n\n"
                "NUMS = pickle.loads(b'ctests.cases\\nNUMS\\n.')\n\n"
                '@pytest.mark.depends_on("data.txt")\n@pytest.mark.parametrize("n", NUMS)\n'
                "def test_n(n):\n    assert n < 10\n"
            ),
        },
        {"tests/cases.py": "NUMS = [1, 99]\n"},
    ),
    "fixture re-exported by a fixtures package": (
        {
            "tests/fixtures/__init__.py": "from tests.fixtures.fx_a import val\n",
            "tests/fixtures/fx_a.py": FIXTURE.format(1),
            "tests/fixtures/fx_b.py": FIXTURE.format(2),
            "tests/conftest.py": "from tests.fixtures import *  # noqa\n",
            "tests/test_x.py": (
                'import pytest\n\n@pytest.mark.depends_on("data.txt")\n'
                "def test_val(val):\n    assert val == 1\n"
            ),
        },
        {"tests/fixtures/__init__.py": "from tests.fixtures.fx_b import val\n"},
    ),
    "star import gains a test": (
        {
            "tests/more.py": "X = 1\n",
            "tests/test_x.py": (
                "import pytest\nfrom tests.more import *  # noqa\n\n"
                '@pytest.mark.depends_on("data.txt")\ndef test_old():\n    pass\n'
            ),
        },
        {"tests/more.py": "X = 1\n\ndef test_new():\n    assert 0\n"},
    ),
    "star import overrides a fixture": (
        {
            "tests/conftest.py": FIXTURE.format(1),
            "tests/fx.py": "X = 1\n",
            "tests/test_x.py": (
                "import pytest\nfrom tests.fx import *  # noqa\n\n"
                '@pytest.mark.depends_on("data.txt")\ndef test_val(val):\n    assert val == 1\n'
            ),
        },
        {"tests/fx.py": "import pytest\n\n@pytest.fixture\ndef val():\n    return 2\n"},
    ),
}

# Round 4, finding 05: a conftest loads the cases by a string (pickle's GLOBAL opcode imports
# the module by name), while pytest loads the initial conftests (tests/) or while it collects a
# directory (suite/): no test module's collection loads it, and no static closure holds it.
BY_NAME = (
    "import pickle\n\nCASES = pickle.loads(b'c{0}.cases\\nCASES\\n.')\n\n"
    "def pytest_generate_tests(metafunc):\n"
    "    if 'case' in metafunc.fixturenames:\n"
    "        metafunc.parametrize('case', CASES)\n"
)
for _where in ("tests", "suite"):
    CASES[f"a {_where}/conftest.py parametrizes from a module it loads by a string"] = (
        {
            f"{_where}/__init__.py": "",
            f"{_where}/cases.py": "CASES = [1]\n",
            f"{_where}/conftest.py": BY_NAME.format(_where),
            f"{_where}/test_x.py": (
                "import pytest\n\n"
                '@pytest.mark.depends_on("data.txt")\ndef test_case(case):\n    assert case > 0\n'
            ),
        },
        {f"{_where}/cases.py": "CASES = [1, -3]\n"},
    )


@FAST_PATH
@pytest.mark.parametrize("case", list(CASES))
def test_a_change_seen_only_by_importing_makes_the_module_collected(
    repo: Path, pytester: pytest.Pytester, case: str, fast_path: str
) -> None:
    before, after = CASES[case]
    write(repo, {"data.txt": "1\n", "tests/__init__.py": "", **before})
    commit(repo)
    run(pytester, fast_path).assert_outcomes(passed=1)
    second = run(pytester, fast_path)  # skipped, or not even collected on the fast path
    assert second.ret == pytest.ExitCode.OK, second.stdout.str()
    assert second.parseoutcomes().get("passed", 0) == 0, second.stdout.str()
    second.stdout.fnmatch_lines(["*unchanged: 1 unchanged*"])
    write(repo, after)
    commit(repo)
    result = run(pytester, fast_path)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, result.stdout.str()

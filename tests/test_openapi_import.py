"""``flowrun import openapi``: real public specs in, tools that validate and call a real server out,
and a workflow file whose other lines never move."""

from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path

import pytest

from support.cli import flowrun
from support.paths import REPO
from support.petstore_server import API_KEY, PetstoreServer
from runner.commands.import_openapi import import_into, parse_binds
from runner.errors import UsageError
from runner.openapi.document import SpecError, load_spec
from runner.openapi.naming import snake_case, tool_name
from runner.openapi.operations import listing, operations, select
from runner.openapi.schemas import SchemaConverter
from runner.openapi.tools import ImportOptions, build_tools
from runner.workflow.validate import load_workflow, validate_file

SPECS = REPO / "tests" / "fixtures" / "openapi"
PETSTORE = SPECS / "petstore-3.0.yaml"
SWAGGER_30 = SPECS / "swagger-petstore-3.0.yaml"
SWAGGER_31 = SPECS / "swagger-petstore-3.1.yaml"
DISCORD = SPECS / "discord-3.1.json"
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def run_import(spec: Path, target: Path, *, server=None, bind=None, **select_args):
    loaded = load_spec(spec)
    chosen = select(operations(loaded), **select_args)
    return import_into(loaded, chosen, target, server=server, bind=bind or {},
                       required_refs=set(select_args.get("op_ids", ())))


def errors_of(path: Path) -> list[str]:
    _, problems = validate_file(path)
    return [p.format() for p in problems if p.severity == "error"]


def tools_of(path: Path) -> dict:
    return {t.name: t for t in load_workflow(path).tools}


# --- reading specs ----------------------------------------------------------------------------


def test_listing_shows_every_operation_of_the_petstore():
    lines = listing(operations(load_spec(PETSTORE)))
    assert [line.split()[:3] for line in lines] == [
        ["GET", "/pets", "listPets"], ["POST", "/pets", "createPets"], ["GET", "/pets/{petId}", "showPetById"]]


def test_list_mode_on_the_command_line():
    r = flowrun("import", "openapi", str(SWAGGER_30), "--list")
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 19
    assert "GET /pet/{petId}" in r.out and "getPetById" in r.out
    assert "19 operations" in r.err


def test_swagger_2_is_refused_with_a_way_out(tmp_path):
    spec = tmp_path / "old.yaml"
    spec.write_text('swagger: "2.0"\ninfo: {title: Old, version: "1"}\npaths: {/x: {get: {responses: {"200": {description: ok}}}}}\n')
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert "Swagger 2.0" in e.value.message and "OpenAPI 3.0 and 3.1" in e.value.message
    assert "swagger2openapi" in e.value.hint
    r = flowrun("import", "openapi", str(spec), "--list")
    assert r.code == 2 and "Swagger 2.0" in r.err and "Traceback" not in r.err


def test_a_reference_outside_the_file_is_refused(tmp_path):
    spec = tmp_path / "remote.yaml"
    spec.write_text("openapi: 3.0.3\ninfo: {title: R, version: '1'}\nservers: [{url: 'https://api.example.com'}]\n"
                    "paths:\n  /x:\n    post:\n      operationId: makeX\n      requestBody:\n        content:\n"
                    "          application/json:\n            schema: {$ref: 'https://evil.example/schemas.yaml#/X'}\n"
                    "      responses: {'200': {description: ok}}\n")
    with pytest.raises(SpecError) as e:
        run_import(spec, tmp_path / "wf.yaml", everything=True)
    assert "outside this file" in e.value.message and "bundle" in e.value.hint
    assert not (tmp_path / "wf.yaml").exists()


def test_an_unknown_operation_suggests_the_close_ones(tmp_path):
    with pytest.raises(SpecError) as e:
        run_import(PETSTORE, tmp_path / "wf.yaml", op_ids=("listPet",))
    assert "listPets" in e.value.hint


def test_nothing_is_chosen_without_a_selector(tmp_path):
    with pytest.raises(SpecError) as e:
        run_import(PETSTORE, tmp_path / "wf.yaml")
    assert "--list" in e.value.hint


# --- names and schemas ------------------------------------------------------------------------


def test_names_are_snake_case_short_and_unique():
    assert snake_case("listPets") == "list_pets"
    assert snake_case("getHTTPStatusCode") == "get_http_status_code"
    assert snake_case("GET /pets/{petId}") == "get_pets_pet_id"
    taken: set[str] = set()
    assert [tool_name("listPets", taken), tool_name("list_pets", taken)] == ["list_pets", "list_pets_2"]
    long = tool_name("x" * 100, taken)
    assert TOOL_NAME.match(long) and len(long) == 64


def test_openapi_30_dialect_becomes_json_schema(tmp_path):
    spec = load_spec(PETSTORE)
    converter = SchemaConverter(spec)
    got = converter.convert({"type": "integer", "nullable": True, "minimum": 1, "exclusiveMinimum": True,
                             "example": 3, "x-internal": True}, "here")
    assert got == {"type": ["integer", "null"], "exclusiveMinimum": 1}
    got = converter.convert({"type": "object", "properties": {"id": {"type": "integer", "readOnly": True},
                                                              "name": {"type": "string"}},
                             "required": ["id", "name"]}, "here")
    assert got == {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    got = converter.convert({"type": "string", "pattern": "(?<name>x)"}, "here")  # ECMA, not Python
    assert got == {"type": "string"} and "dropped pattern" in converter.notes[0]


def test_recursive_schemas_go_to_defs(tmp_path):
    spec = tmp_path / "tree.yaml"
    spec.write_text("openapi: 3.1.0\ninfo: {title: Tree, version: '1'}\nservers: [{url: 'https://api.example.com'}]\n"
                    "paths:\n  /nodes:\n    post:\n      operationId: addNode\n      requestBody:\n        required: true\n"
                    "        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/Node'}\n"
                    "      responses: {'200': {description: ok}}\n"
                    "components:\n  schemas:\n    Node:\n      type: object\n      required: [label]\n"
                    "      properties:\n        label: {type: string}\n"
                    "        children: {type: array, items: {$ref: '#/components/schemas/Node'}}\n")
    target = tmp_path / "wf.yaml"
    run_import(spec, target, everything=True)
    assert errors_of(target) == []
    params = tools_of(target)["add_node"].parameters
    assert params["required"] == ["label"]
    assert params["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert params["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}


# --- every fixture imports and validates -----------------------------------------------------


def test_petstore_30_imports_as_three_tools(tmp_path):
    target = tmp_path / "pets.yaml"
    lines = run_import(PETSTORE, target, tags=("pets",))
    assert "added 3 tools: list_pets, create_pets, show_pet_by_id" in lines
    assert errors_of(target) == []
    tools = tools_of(target)
    show = tools["show_pet_by_id"].resolver
    assert show.url == "http://petstore.swagger.io/v1/pets/${{ args.petId }}" and show.method == "GET"
    assert tools["show_pet_by_id"].parameters["required"] == ["petId"]
    assert tools["list_pets"].resolver.query == {"limit": "${{ args.limit }}"}
    create = tools["create_pets"]
    assert create.resolver.method == "POST"
    assert create.resolver.body == {"id": "${{ args.id }}", "name": "${{ args.name }}", "tag": "${{ args.tag }}"}
    assert create.parameters["required"] == ["id", "name"]


def test_swagger_petstore_30_security_and_refusals(tmp_path):
    target = tmp_path / "store.yaml"
    lines = run_import(SWAGGER_30, target, everything=True)
    assert errors_of(target) == []
    tools = tools_of(target)
    assert tools["get_pet_by_id"].resolver.headers == {"api_key": "${{ env.SWAGGER_PETSTORE_API_KEY }}"}
    assert "update_pet" not in tools  # OAuth only
    assert any(line.startswith("skipped PUT /pet (updatePet): it needs petstore_auth (oauth2)") for line in lines)
    assert any("application/octet-stream" in line and "uploadFile" in line for line in lines)
    assert any(line.startswith("hint:") for line in lines)
    assert "SWAGGER_PETSTORE_API_KEY" in " ".join(lines)


def test_oauth_only_operation_named_with_op_is_an_error(tmp_path):
    with pytest.raises(UsageError) as e:
        run_import(SWAGGER_30, tmp_path / "wf.yaml", op_ids=("updatePet",))
    assert "OAuth" in e.value.message and "Bearer" in e.value.hint


def test_swagger_petstore_31_needs_a_server_and_follows_ids(tmp_path):
    target = tmp_path / "store31.yaml"
    with pytest.raises(SpecError) as e:
        run_import(SWAGGER_31, target, op_ids=("getPetById",))
    assert "relative" in e.value.message and "--server" in e.value.hint
    run_import(SWAGGER_31, target, everything=True, server="https://petstore31.example.com/api/v31")
    assert errors_of(target) == []
    tool = tools_of(target)["get_pet_by_id"]
    assert tool.resolver.url == "https://petstore31.example.com/api/v31/pet/${{ args.petId }}"
    assert tool.parameters["properties"]["petId"]["exclusiveMinimum"] == 1  # 3.1: numeric form kept


def test_every_operation_of_the_large_spec_builds_or_says_why():
    spec = load_spec(DISCORD)
    ops = operations(spec)
    assert len(ops) > 200
    built, skipped = build_tools(spec, ops, ImportOptions(env_prefix="DISCORD"), set())
    assert len(built) + len(skipped) == len(ops)
    names = [t.data["name"] for t in built]
    assert len(set(names)) == len(names) and all(TOOL_NAME.match(n) for n in names)
    assert len(built) > 200
    assert all(reason for _, reason in skipped)


def test_a_slice_of_the_large_spec_validates(tmp_path):
    target = tmp_path / "discord.yaml"
    lines = run_import(DISCORD, target, paths=("/guilds/{guild_id}/roles*",))
    assert errors_of(target) == []
    tools = tools_of(target)
    assert {"list_guild_roles", "create_guild_role", "delete_guild_role"} <= set(tools)
    assert tools["list_guild_roles"].resolver.headers == {"Authorization": "${{ env.DISCORD_BOT_TOKEN }}"}
    assert any(line.startswith("wrote ") for line in lines)


# --- the file keeps everything else ----------------------------------------------------------


def copy_workflow(tmp_path: Path, name: str = "open_meteo.yaml") -> Path:
    target = tmp_path / name
    shutil.copy(REPO / "workflows" / name, target)
    return target


def only_insertions(before: str, after: str) -> list[str]:
    """The lines ``after`` adds; fails if any line of ``before`` changed or moved."""
    a, b = before.splitlines(), after.splitlines()
    added = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        assert tag in ("equal", "insert"), (tag, a[i1:i2], b[j1:j2])
        if tag == "insert":
            added += b[j1:j2]
    return added


def test_import_into_a_commented_file_only_adds_lines(tmp_path):
    target = copy_workflow(tmp_path)
    before = target.read_text()
    run_import(PETSTORE, target, tags=("pets",))
    added = only_insertions(before, target.read_text())
    assert "  - name: list_pets" in added and "  - name: show_pet_by_id" in added
    assert errors_of(target) == []
    assert list(tools_of(target)) == ["current_temperature", "list_pets", "create_pets", "show_pet_by_id"]


def test_reimport_changes_nothing_and_keeps_hand_edits(tmp_path):
    target = copy_workflow(tmp_path)
    run_import(PETSTORE, target, tags=("pets",))
    once = target.read_text()
    assert run_import(PETSTORE, target, tags=("pets",))[-1].endswith("is already up to date")
    assert target.read_text() == once
    edited = once.replace("    description: Info for a specific pet\n",
                          "    # edited by hand\n    description: Look up one pet by its id.\n    timeout: 5\n")
    edited = edited.replace("          description: The id of the pet to retrieve\n",
                            "          description: The pet's id, a number as text\n")
    target.write_text(edited)
    run_import(PETSTORE, target, tags=("pets",))
    assert target.read_text() == edited


def test_reimport_refreshes_what_the_api_changed_in_place(tmp_path):
    spec = tmp_path / "petstore.yaml"
    spec.write_text(PETSTORE.read_text())
    target = copy_workflow(tmp_path)
    run_import(spec, target, tags=("pets",))
    before = target.read_text()
    spec.write_text(PETSTORE.read_text().replace("http://petstore.swagger.io/v1", "https://pets.example.com/v2"))
    lines = run_import(spec, target, tags=("pets",))
    assert "updated 3 tools: list_pets, create_pets, show_pet_by_id" in lines
    after = target.read_text()
    changed = [(x, y) for x, y in zip(before.splitlines(), after.splitlines()) if x != y]
    assert len(before.splitlines()) == len(after.splitlines())
    assert changed and all("petstore.swagger.io/v1" in x and "pets.example.com/v2" in y for x, y in changed)


def test_a_hand_renamed_tool_is_still_updated_in_place(tmp_path):
    target = copy_workflow(tmp_path)
    run_import(PETSTORE, target, op_ids=("listPets",))
    target.write_text(target.read_text().replace("name: list_pets", "name: pets_in_stock"))
    lines = run_import(PETSTORE, target, op_ids=("listPets",), server="http://127.0.0.1:9/v1")
    assert "updated 1 tool: pets_in_stock" in lines
    tools = tools_of(target)
    assert "list_pets" not in tools and tools["pets_in_stock"].resolver.url == "http://127.0.0.1:9/v1/pets"
    assert tools["pets_in_stock"].resolver.allow_private_network is True


def test_a_name_already_used_by_a_hand_written_tool_is_not_taken(tmp_path):
    target = tmp_path / "wf.yaml"
    target.write_text("version: 1\nname: wf\ntools:\n  - name: list_pets\n    description: mine\n"
                      "    resolve: {static: none}\n")
    run_import(PETSTORE, target, op_ids=("listPets",))
    assert list(tools_of(target)) == ["list_pets", "list_pets_2"]


def test_a_refused_result_leaves_the_file_alone(tmp_path):
    target = tmp_path / "wf.yaml"
    broken = "version: 1\nname: wf\nmodel: {api: nonsense}\n"
    target.write_text(broken)
    with pytest.raises(Exception) as e:
        run_import(PETSTORE, target, op_ids=("listPets",))
    assert "not written" in str(e.value)
    assert target.read_text() == broken


# --- binding on import -----------------------------------------------------------------------


def test_bind_values_parse_like_json_or_stay_text():
    assert parse_binds(("limit=5", "tenant=${{ inputs.tenant }}", "flag=true", "word=abc")) == {
        "limit": 5, "tenant": "${{ inputs.tenant }}", "flag": True, "word": "abc"}
    with pytest.raises(UsageError):
        parse_binds(("nothing",))


def test_bind_on_import_declares_the_input_and_hides_the_argument(tmp_path):
    target = copy_workflow(tmp_path)
    before = target.read_text()
    lines = run_import(PETSTORE, target, op_ids=("showPetById",), bind={"petId": "${{ inputs.pet }}"})
    assert "declared inputs: pet (give them with --var NAME=VALUE)" in lines
    only_insertions(before, target.read_text())
    assert errors_of(target) == []
    tool = tools_of(target)["show_pet_by_id"]
    assert tool.bind == {"petId": "${{ inputs.pet }}"}
    assert "petId" in tool.parameters["properties"] and tool.model_parameters["properties"] == {}
    assert tool.model_parameters["required"] == []


def test_binding_an_argument_no_tool_has_is_an_error(tmp_path):
    with pytest.raises(UsageError) as e:
        run_import(PETSTORE, tmp_path / "wf.yaml", op_ids=("listPets",), bind={"tenant": "acme"})
    assert "tenant" in e.value.message


# --- calling the imported tools against a server that implements the spec --------------------


def test_imported_tools_call_a_real_petstore(tmp_path):
    with PetstoreServer() as server:
        target = tmp_path / "pets.yaml"
        r = flowrun("import", "openapi", str(PETSTORE), "--into", str(target), "--tag", "pets",
                    "--server", server.base + "/v1")
        assert r.code == 0, r.err
        assert "added 3 tools" in r.err
        assert flowrun("validate", str(target)).code == 0
        r = flowrun("tools", "call", str(target), "list_pets", "--args", '{"limit": 1}')
        assert r.code == 0, r.err
        assert json.loads(r.out) == [{"id": 1, "name": "Rex", "tag": "dog"}]
        r = flowrun("tools", "call", str(target), "create_pets", "--args", '{"id": 7, "name": "Kit", "tag": "cat"}')
        assert r.code == 0, r.err
        assert server.seen[-1].method == "POST" and server.seen[-1].body == {"id": 7, "name": "Kit", "tag": "cat"}
        r = flowrun("tools", "call", str(target), "show_pet_by_id", "--args", '{"petId": "7"}')
        assert r.code == 0, r.err
        assert json.loads(r.out)["name"] == "Kit"
        r = flowrun("tools", "call", str(target), "show_pet_by_id", "--args", '{"petId": "99"}')
        assert r.code == 1 and "404" in r.err


def test_api_key_from_the_environment_reaches_the_server(tmp_path):
    with PetstoreServer() as server:
        target = tmp_path / "store.yaml"
        run_import(SWAGGER_30, target, op_ids=("getPetById",), server=server.base + "/api/v3")
        r = flowrun("tools", "call", str(target), "get_pet_by_id", "--args", '{"petId": 2}',
                    env={"SWAGGER_PETSTORE_API_KEY": API_KEY})
        assert r.code == 0, r.err
        assert json.loads(r.out)["name"] == "Tom"
        assert server.seen[-1].headers["api_key"] == API_KEY
        assert API_KEY not in r.out + r.err


def test_a_bound_argument_is_filled_from_the_file_and_never_from_the_caller(tmp_path):
    with PetstoreServer() as server:
        target = tmp_path / "pets.yaml"
        r = flowrun("import", "openapi", str(PETSTORE), "--into", str(target), "--op", "listPets",
                    "--server", server.base + "/v1", "--bind", "limit=1")
        assert r.code == 0, r.err
        r = flowrun("tools", "list", str(target))
        assert "bound by the file: limit" in r.out and "limit: integer" not in r.out
        r = flowrun("tools", "call", str(target), "list_pets", "--args", "{}")
        assert r.code == 0, r.err
        assert server.seen[-1].query == {"limit": ["1"]} and len(json.loads(r.out)) == 1
        r = flowrun("tools", "call", str(target), "list_pets", "--args", '{"limit": 50}')
        assert r.code == 0, r.err
        assert server.seen[-1].query == {"limit": ["1"]}
        assert "bound argument limit; ignored" in r.err


# --- the example workflow --------------------------------------------------------------------


EXAMPLE_COMMAND = ["import", "openapi", "tests/fixtures/openapi/petstore-3.0.yaml", "--tag", "pets",
                   "--bind", "limit=${{ inputs.page_size }}"]


def test_the_hand_edited_example_survives_a_reimport(tmp_path):
    example = REPO / "workflows" / "petstore.yaml"
    target = tmp_path / "petstore.yaml"
    shutil.copy(example, target)
    r = flowrun(*EXAMPLE_COMMAND, "--into", str(target))
    assert r.code == 0, r.err
    assert "unchanged 3 tools" in r.err
    assert target.read_text() == example.read_text()


def test_the_example_came_from_the_command(tmp_path):
    fresh = tmp_path / "petstore.yaml"
    r = flowrun(*EXAMPLE_COMMAND, "--into", str(fresh))
    assert r.code == 0, r.err
    generated, example = tools_of(fresh), tools_of(REPO / "workflows" / "petstore.yaml")
    assert list(generated) == list(example)
    for name, tool in generated.items():
        assert tool.parameters["properties"].keys() == example[name].parameters["properties"].keys()
        assert tool.resolver.url == example[name].resolver.url and tool.bind == example[name].bind
    assert generated["list_pets"].description != example["list_pets"].description  # edited by hand


# --- a spec is input from outside ------------------------------------------------------------


def hostile(tmp_path: Path, path: str = "/x", server: str = "https://api.example.com") -> Path:
    spec = tmp_path / "hostile.yaml"
    spec.write_text(json.dumps({"openapi": "3.0.3", "info": {"title": "H", "version": "1"},
                                "servers": [{"url": server}],
                                "paths": {path: {"get": {"operationId": "getX", "responses": {"200": {"description": "ok"}}}}}}))
    return spec


@pytest.mark.parametrize("where", ["path", "server"])
def test_a_spec_cannot_smuggle_an_expression_into_the_request(tmp_path, where):
    args = {"path": "/steal/${{ env.OPENAI_API_KEY }}"} if where == "path" else {"server": "https://x.example/${{ env.HOME }}"}
    with pytest.raises(SpecError) as e:
        run_import(hostile(tmp_path, **args), tmp_path / "wf.yaml", everything=True)
    assert "flowrun expression" in e.value.message
    assert not (tmp_path / "wf.yaml").exists()


def test_a_spec_cannot_open_the_private_network_by_itself(tmp_path):
    target = tmp_path / "wf.yaml"
    lines = run_import(hostile(tmp_path, server="http://127.0.0.1:8080"), target, everything=True)
    assert tools_of(target)["get_x"].resolver.allow_private_network is False
    assert any("confirm with --server" in line for line in lines)
    run_import(hostile(tmp_path, server="http://127.0.0.1:8080"), target, everything=True, server="http://127.0.0.1:8080")
    assert tools_of(target)["get_x"].resolver.allow_private_network is True


def test_validate_help_and_the_run_path_never_load_the_importer():
    import subprocess
    import sys

    code = ("import sys\nfrom runner.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ruamel', 'runner.openapi'))))\n")
    for args in (["--help"], ["validate", "workflows/petstore.yaml"], ["workflows/petstore.yaml", "--offline", "-q"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO).stdout
        assert out.strip().endswith("[]"), (args, out)


def test_a_file_without_a_final_newline_is_left_alone_when_nothing_changes(tmp_path):
    target = tmp_path / "wf.yaml"
    run_import(PETSTORE, target, op_ids=("listPets",))
    target.write_text(target.read_text().rstrip("\n"))
    before = target.read_text()
    run_import(PETSTORE, target, op_ids=("listPets",))
    assert target.read_text() == before
    run_import(PETSTORE, target, op_ids=("showPetById",))
    assert target.read_text().startswith(before + "\n") and errors_of(target) == []

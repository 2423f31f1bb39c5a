"""A workflow with one http POST tool (``create_pet``) aimed at the loopback Petstore
(``support.petstore_server``): a tool that asks before it runs, for the approval tests."""

from __future__ import annotations

from pathlib import Path


def petstore_workflow(tmp_path: Path, base: str, approval: str = "", headers: str = "") -> Path:
    """``approval``: YAML lines for the tool (indented 4), e.g. ``"    approval: allow\\n"``;
    ``headers``: a flow mapping for the request's headers."""
    path = tmp_path / "pets.yaml"
    header_line = f"        headers: {headers}\n" if headers else ""
    path.write_text(f"""version: 1
name: pets
model: {{name: scripted}}
input: Add Rex
tools:
  - name: create_pet
    description: Add a pet to the store.
    parameters:
      type: object
      properties:
        id: {{type: integer}}
        name: {{type: string}}
      required: [id, name]
{approval}    resolve:
      http:
        url: {base}/v1/pets
        method: POST
{header_line}        body: {{id: "${{{{ args.id }}}}", name: "${{{{ args.name }}}}"}}
        allow_private_network: true
""")
    return path

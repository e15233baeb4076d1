"""The tools: `@tool` and `Tool` (`_tool`), their JSON schemas and docstrings, `ToolContext`,
and toolsets with the catalog an agent offers. Knows no wire and no loop: a tool is
described, validated and called here, and the loop decides when.
"""

"""Typed output: what an `output_type` asks of the model (`_spec`: the schema, the final
tool, the validation) and the partial value watched while the answer streams (`_watch`).
Imports the tools room (schemas) and the vocabulary; the loop's typed run uses it.
"""

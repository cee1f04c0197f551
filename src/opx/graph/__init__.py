"""The LangGraph graph: state, nodes and build_graph()."""

"""Amazon Bedrock Agents as the agents' reasoning backend."""

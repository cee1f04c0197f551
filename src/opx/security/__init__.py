"""Safety guards around AWS data: redaction of personal data and secrets in free text, and
read-only enforcement on every AWS client OPX creates."""

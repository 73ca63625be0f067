"""The paper's applications of condensed sets (section 3.2): architecture search (`nas`)."""

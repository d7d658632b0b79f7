"""Events, their speaker agendas, and the speakers reused across them."""

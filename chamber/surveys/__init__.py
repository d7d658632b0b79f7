"""Follow-up surveys, invitations, responses and results. Arrives with the surveys issue."""

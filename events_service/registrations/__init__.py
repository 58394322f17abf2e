"""Registrations: seats, the waiting list, payment, exports."""

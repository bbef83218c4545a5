"""What reaches drills from outside: the Alertmanager webhook receiver and the paging stand-ins."""

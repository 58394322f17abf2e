from devstack.launcher import main

raise SystemExit(main())

from nndoctor.cli import main

raise SystemExit(main())

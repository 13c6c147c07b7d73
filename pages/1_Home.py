"""Home: what the tool does, getting started, the data on this machine, the active model, credits."""

from asgm.app import home, page

page.page_setup("Home", follow_jobs=False)  # the preparation panel follows the jobs
home.intro()
run_id = page.selected_run_id()
home.getting_started()
stores = home.data_on_this_machine()
home.active_model(run_id, stores)
home.credits()

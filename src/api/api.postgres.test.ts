import { apiSuite } from './api.case.js';
import { postgresUrl } from './testing.js';

// CI starts PostgreSQL and sets DVRNET_TEST_POSTGRES (see .ci/run).
apiSuite('postgres', { skip: postgresUrl() ? undefined : 'DVRNET_TEST_POSTGRES is not set' });
